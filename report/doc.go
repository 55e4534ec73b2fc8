// Package report turns recorded runs into what a paper needs: figures at
// paper sizes, a results table with confidence intervals, and a report that
// says where every number came from. It is what `mami report` runs.
//
// # Selection
//
// A report covers the runs of one sweep (every run whose run.json or
// config names the sweep in run.sweep_id; LatestSweep picks the sweep whose
// state.json changed last) or a list of run ids. Runs that never finished an
// epoch are left out.
//
// # Analysis
//
// Runs are grouped into arms (a fusion, or a fusion and head when the
// selection mixes heads) and cells (an arm at one learning rate; the runs
// of a cell are its seeds). Each arm's best learning rate has the highest
// mean final validation macro-F1, and its best run is the seed with the
// highest final validation macro-F1 at that rate. The best run's
// best-epoch checkpoint is scored on the test split of its own data split;
// the macro-F1 gets a percentile bootstrap 95% interval (BootstrapMacroF1,
// seeded). The winner is chosen by validation only, never by test scores.
//
// # Output
//
// Generate writes into the report folder:
//
//	figures/<name>.{pdf,svg,png}  loss, lr_sensitivity, heatmap, roc_pr, confusion, test_f1, reproduction
//	report.md, report.html        figures, captions, results table and each figure's provenance
//	results.tex                   the results table (booktabs)
//	provenance.json               runs, config paths, code version and machine behind every figure
//
// A figure that cannot be drawn (no checkpoints to score, no reproduction
// pair) is listed in the report with the reason instead of failing it.
package report
