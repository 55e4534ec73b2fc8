package report

import (
	"bytes"
	"fmt"
	"html/template"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mami-lab/mami/plots"
)

// Row is one line of the results table: an arm at its best learning rate.
type Row struct {
	Arm, LR    string
	Seeds      int
	Val        string // mean ± sd of the final validation macro-F1
	TestF1     string
	CI         string // [lo, hi]
	Acc, AUROC string
	AP         string
	Run        string
	// Best marks the highest test macro-F1.
	Best bool
	Note string
}

func f3(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.3f", v)
}

// Rows returns the results table, in the analysis's arm order.
func (r *Report) Rows() []Row {
	var rows []Row
	best := math.Inf(-1)
	for _, a := range r.Analysis.Arms {
		if a.Test != nil && a.Test.F1.Value > best {
			best = a.Test.F1.Value
		}
	}
	for _, a := range r.Analysis.Arms {
		c := a.BestCell()
		row := Row{Arm: a.Name, LR: plots.FormatLR(a.BestLR), Seeds: c.N, Val: f3(c.Mean), Run: a.Best.ID}
		if c.N > 1 {
			row.Val += " ± " + f3(c.SD)
		}
		if t := a.Test; t != nil {
			row.TestF1, row.Acc, row.AUROC, row.AP = f3(t.F1.Value), f3(t.Acc), f3(t.AUROC), f3(t.AP)
			if !math.IsNaN(t.F1.Lo) {
				row.CI = fmt.Sprintf("[%s, %s]", f3(t.F1.Lo), f3(t.F1.Hi))
			}
			row.Best = t.F1.Value == best
			row.Note = t.Note
		}
		rows = append(rows, row)
	}
	return rows
}

// Verdict is the report's answer in one paragraph: which fusion wins by
// validation, at which learning rate, its test score with its interval, and
// whether the runner-up's interval overlaps.
func (r *Report) Verdict() string {
	w := r.Analysis.Winner
	if w == nil {
		return "No run finished an epoch with a validation score; nothing can be compared."
	}
	c := w.BestCell()
	s := fmt.Sprintf("By validation macro-F1, **%s** wins at lr %s (%s", w.Name, plots.FormatLR(w.BestLR), f3(c.Mean))
	if c.N > 1 {
		s += fmt.Sprintf(" ± %s over %d seeds", f3(c.SD), c.N)
	}
	s += ")."
	if t := w.Test; t != nil && !math.IsNaN(t.F1.Value) {
		s += fmt.Sprintf(" On the test split its best model scores macro-F1 %s", f3(t.F1.Value))
		if !math.IsNaN(t.F1.Lo) {
			s += fmt.Sprintf(" (95%% CI %s–%s)", f3(t.F1.Lo), f3(t.F1.Hi))
		}
		s += "."
		var overlap []string
		for _, a := range r.Analysis.Arms {
			if a == w || a.Test == nil || math.IsNaN(a.Test.F1.Hi) || math.IsNaN(t.F1.Lo) {
				continue
			}
			if a.Test.F1.Hi >= t.F1.Lo {
				overlap = append(overlap, a.Name)
			}
		}
		if len(overlap) > 0 {
			s += fmt.Sprintf(" Its interval overlaps those of %s, so the test split does not separate them.", strings.Join(overlap, ", "))
		} else if len(r.Analysis.Arms) > 1 && !math.IsNaN(t.F1.Lo) {
			s += " No other fusion's interval reaches its lower bound."
		}
	}
	return s
}

// relConfig is the path of a run's config.yaml relative to the report.
func (r *Report) relConfig(id string) string {
	for _, run := range r.allRuns() {
		if run.ID == id {
			if rel, err := filepath.Rel(r.Out, filepath.Join(run.Dir, "config.yaml")); err == nil {
				return filepath.ToSlash(rel)
			}
			return filepath.Join(run.Dir, "config.yaml")
		}
	}
	return ""
}

func (r *Report) allRuns() []*Run {
	all := slices.Clone(r.Analysis.Runs)
	if r.Repro != nil {
		all = append(all, r.Repro.Faithful, r.Repro.Correct)
	}
	return all
}

// bestConfig is the resolved config of the winner's best run.
func (r *Report) bestConfig() string {
	if w := r.Analysis.Winner; w != nil {
		if b, err := w.Best.Config.Marshal(); err == nil {
			return string(b)
		}
	}
	return ""
}

func (r *Report) variedList() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(r.Varied)) {
		out = append(out, fmt.Sprintf("%s: %s", k, strings.Join(r.Varied[k], ", ")))
	}
	return out
}

const methodText = `Each fusion's best learning rate is the one with the highest final validation macro-F1 (mean over seeds); its best model is the seed with the highest final validation macro-F1 at that rate, restored from its best-epoch checkpoint and scored on the held-out test split of its own data split (same seed). Test scores play no part in any choice. Confidence intervals are percentile bootstrap intervals of the test macro-F1: the test split is resampled with replacement, the resampling seeded so the report is reproducible.`

func (r *Report) markdown() ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# %s\n\n", r.Title)
	p("Generated %s from %s under `%s`.  \n", r.Generated.Format("2006-01-02 15:04 UTC"), r.Selection, r.Workdir)
	p("Code: %s.  \nMachine: %s.  \nRuns trained by: %s.\n\n", r.Code, r.Machine, r.trainedBy())
	p("## Results\n\n%s\n\n", r.Verdict())
	p("| fusion | best lr | seeds | val macro-F1 | test macro-F1 | 95%% CI | test acc | test AUROC | test AP | run |\n")
	p("|---|---:|---:|---:|---:|---|---:|---:|---:|---|\n")
	for _, row := range r.Rows() {
		f1 := row.TestF1
		if row.Best {
			f1 = "**" + f1 + "**"
		}
		p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | `%s` |\n", row.Arm, row.LR, row.Seeds, row.Val, f1, row.CI, row.Acc, row.AUROC, row.AP, row.Run)
	}
	for _, row := range r.Rows() {
		if row.Note != "" {
			p("\n%s: %s", row.Arm, row.Note)
		}
	}
	p("\n\nThe same table for LaTeX (booktabs): [`%s`](%s).\n\n", TeXFile, TeXFile)
	p("## Figures\n\n")
	n := 0
	for _, f := range r.Figures {
		p("### %s\n\n", f.Title)
		if f.Skipped != "" {
			p("*Not drawn:* %s\n\n", f.Skipped)
			continue
		}
		n++
		p("![%s](%s/%s.png)\n\n", f.Title, FiguresDir, f.Name)
		p("*Figure %d.* %s\n\n", n, f.Caption)
		p("Files: [PDF](%[1]s/%[2]s.pdf) · [SVG](%[1]s/%[2]s.svg) · [PNG](%[1]s/%[2]s.png)  \n", FiguresDir, f.Name)
		p("Provenance: %s; code %s; machine %s.\n\n", r.runLinksMD(f.Runs), r.Code, r.Machine)
	}
	p("## Configuration\n\n")
	if v := r.variedList(); len(v) > 0 {
		p("Keys that vary among the runs:\n\n")
		for _, s := range v {
			p("- `%s`\n", s)
		}
		p("\n")
	}
	if c := r.bestConfig(); c != "" {
		p("Resolved config of the best run (`%s`):\n\n```yaml\n%s```\n\n", r.Analysis.Winner.Best.ID, c)
	}
	p("## Method\n\n%s\n", methodText)
	return b.Bytes(), nil
}

func (r *Report) runLinksMD(ids []string) string {
	if len(ids) == 0 {
		return "no runs"
	}
	const max = 12
	var parts []string
	for i, id := range ids {
		if i == max-1 && len(ids) > max {
			parts = append(parts, fmt.Sprintf("… %d runs in all (see %s)", len(ids), ProvenanceFile))
			break
		}
		parts = append(parts, fmt.Sprintf("[`%s`](%s)", id, r.relConfig(id)))
	}
	return "runs " + strings.Join(parts, ", ") + " (links: each run's resolved config)"
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.R.Title}}</title>
<style>
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child, td.l { text-align: left; }
thead { border-top: 2px solid #222; border-bottom: 1px solid #222; }
tbody { border-bottom: 2px solid #222; }
figure { margin: 2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; }
.prov { font-size: 0.8rem; color: #555; }
code, pre { font-family: "Liberation Mono", Consolas, monospace; font-size: 0.85rem; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>{{.R.Title}}</h1>
<p>Generated {{.Generated}} from {{.R.Selection}} under <code>{{.R.Workdir}}</code>.<br>
Code: {{.R.Code}}.<br>Machine: {{.R.Machine}}.<br>Runs trained by: {{.TrainedBy}}.</p>
<h2>Results</h2>
<p>{{.Verdict}}</p>
<table>
<thead><tr><th>fusion</th><th>best lr</th><th>seeds</th><th>val macro-F1</th><th>test macro-F1</th><th>95% CI</th><th>test acc</th><th>test AUROC</th><th>test AP</th><th>run</th></tr></thead>
<tbody>
{{range .Rows}}<tr><td>{{.Arm}}</td><td>{{.LR}}</td><td>{{.Seeds}}</td><td>{{.Val}}</td><td>{{if .Best}}<b>{{.TestF1}}</b>{{else}}{{.TestF1}}{{end}}</td><td>{{.CI}}</td><td>{{.Acc}}</td><td>{{.AUROC}}</td><td>{{.AP}}</td><td class="l"><code>{{.Run}}</code></td></tr>
{{end}}</tbody>
</table>
{{range .Rows}}{{if .Note}}<p class="prov">{{.Arm}}: {{.Note}}</p>{{end}}{{end}}
<p>The same table for LaTeX (booktabs): <a href="{{.TeX}}">{{.TeX}}</a>.</p>
<h2>Figures</h2>
{{range .Figures}}<h3>{{.Title}}</h3>
{{if .Skipped}}<p><em>Not drawn:</em> {{.Skipped}}</p>
{{else}}<figure>
<img src="{{.Dir}}/{{.Name}}.svg" alt="{{.Title}}">
<figcaption><b>Figure {{.N}}.</b> {{.Caption}}<br>
Files: <a href="{{.Dir}}/{{.Name}}.pdf">PDF</a> · <a href="{{.Dir}}/{{.Name}}.svg">SVG</a> · <a href="{{.Dir}}/{{.Name}}.png">PNG</a></figcaption>
<p class="prov">Provenance: runs {{range $i, $r := .Runs}}{{if $i}}, {{end}}<a href="{{$r.Config}}"><code>{{$r.ID}}</code></a>{{end}}{{if .More}} … {{.Total}} runs in all (see provenance.json){{end}} (links: each run's resolved config); code {{$.R.Code}}; machine {{$.R.Machine}}.</p>
</figure>
{{end}}{{end}}
<h2>Configuration</h2>
{{with .Varied}}<p>Keys that vary among the runs:</p><ul>{{range .}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
{{with .BestConfig}}<p>Resolved config of the best run (<code>{{$.BestID}}</code>):</p><pre>{{.}}</pre>{{end}}
<h2>Method</h2>
<p>{{.Method}}</p>
</body>
</html>
`))

func (r *Report) html() ([]byte, error) {
	type runLink struct{ ID, Config string }
	type fig struct {
		*FigureInfo
		N, Total int
		Dir      string
		Runs     []runLink
		More     bool
	}
	var figs []fig
	n := 0
	for _, f := range r.Figures {
		fg := fig{FigureInfo: f, Dir: FiguresDir, Total: len(f.Runs)}
		if f.Skipped == "" {
			n++
			fg.N = n
		}
		for i, id := range f.Runs {
			if i == 11 && len(f.Runs) > 12 {
				fg.More = true
				break
			}
			fg.Runs = append(fg.Runs, runLink{ID: id, Config: r.relConfig(id)})
		}
		figs = append(figs, fg)
	}
	verdict := template.HTMLEscapeString(r.Verdict())
	verdict = boldRE(verdict)
	bestID := ""
	if w := r.Analysis.Winner; w != nil {
		bestID = w.Best.ID
	}
	var b bytes.Buffer
	err := htmlTmpl.Execute(&b, map[string]any{
		"R": r, "TrainedBy": r.trainedBy(), "Generated": r.Generated.Format("2006-01-02 15:04 UTC"), "Verdict": template.HTML(verdict),
		"Rows": r.Rows(), "TeX": TeXFile, "Figures": figs, "Varied": r.variedList(),
		"BestConfig": r.bestConfig(), "BestID": bestID, "Method": methodText,
	})
	return b.Bytes(), err
}

// boldRE turns **x** into <b>x</b> in already escaped text.
func boldRE(s string) string {
	for {
		i := strings.Index(s, "**")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i+2:], "**")
		if j < 0 {
			return s
		}
		s = s[:i] + "<b>" + s[i+2:i+2+j] + "</b>" + s[i+4+j:]
	}
}

// texEscape escapes the characters LaTeX treats specially in text.
func texEscape(s string) string {
	r := strings.NewReplacer(`\`, `\textbackslash{}`, `_`, `\_`, `%`, `\%`, `&`, `\&`, `#`, `\#`, `$`, `\$`,
		`{`, `\{`, `}`, `\}`, `~`, `\textasciitilde{}`, `^`, `\textasciicircum{}`, "·", "--", "–", "--", "±", `$\pm$`)
	return r.Replace(s)
}

// tex is results.tex: the results table in booktabs style, ready to \input.
func (r *Report) tex() ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("%% %s\n%% Generated %s by %s.\n%% Requires \\usepackage{booktabs}.\n", r.Title, r.Generated.Format("2006-01-02 15:04 UTC"), texEscape(r.Code))
	p("\\begin{table}[t]\n\\centering\n\\small\n")
	p("\\begin{tabular}{lrrrrrr}\n\\toprule\n")
	p("Fusion & lr & Seeds & Val.\\ macro-F1 & Test macro-F1 [95\\%% CI] & Test AUROC & Test AP \\\\\n\\midrule\n")
	for _, row := range r.Rows() {
		f1 := texEscape(row.TestF1)
		if row.Best {
			f1 = "\\textbf{" + f1 + "}"
		}
		if row.CI != "" {
			f1 += " " + texEscape(row.CI)
		}
		lr := row.LR
		if strings.Contains(lr, "e") {
			mant, exp, _ := strings.Cut(row.LR, "e")
			lr = fmt.Sprintf("$%s \\times 10^{%s}$", mant, exp)
			if mant == "1" {
				lr = fmt.Sprintf("$10^{%s}$", exp)
			}
		}
		p("%s & %s & %d & %s & %s & %s & %s \\\\\n", texEscape(row.Arm), lr, row.Seeds, texEscape(row.Val), f1, texEscape(row.AUROC), texEscape(row.AP))
	}
	p("\\bottomrule\n\\end{tabular}\n")
	res := 0
	for _, a := range r.Analysis.Arms {
		if a.Test != nil {
			res = max(res, a.Test.F1.Resamples)
		}
	}
	p("\\caption{MAMI Sub-task A: each fusion at its best learning rate (by final validation macro-F1, mean over seeds). Test scores are of the best seed's best-epoch checkpoint; intervals are 95\\%% percentile bootstrap intervals (%d resamples of the test split). Best test macro-F1 in bold.}\n", res)
	p("\\label{tab:mami-results}\n\\end{table}\n")
	return b.Bytes(), nil
}

// trainedBy lists the mami versions and hosts recorded in the runs' run.json.
func (r *Report) trainedBy() string {
	vs, hosts := map[string]bool{}, map[string]bool{}
	for _, run := range r.allRuns() {
		v := run.Version
		if v == "" {
			v = "unknown version"
		}
		vs["mami "+v] = true
		if run.Host != "" {
			hosts[run.Host] = true
		}
	}
	s := strings.Join(slices.Sorted(maps.Keys(vs)), ", ")
	if len(hosts) > 0 {
		s += " on " + strings.Join(slices.Sorted(maps.Keys(hosts)), ", ")
	}
	return s
}
