// Package sweep runs hyperparameter sweeps described in W&B's sweep format over mami config keys.
//
// # Sweep files
//
// Parse reads a W&B sweep file: method (grid, random or bayes), metric {name, goal, target}, parameters,
// early_terminate (hyperband), run_cap, and the tolerated command/program. Parameter names are config keys by
// dot path ("train.lr"), or nested blocks (train: {parameters: {lr: ...}}). Each parameter has a value,
// values (with optional probabilities) or a distribution: constant, categorical, int_uniform, uniform,
// q_uniform, log_uniform (min and max are natural logarithms, as in W&B), log_uniform_values,
// q_log_uniform(_values), inv_log_uniform(_values), normal, q_normal, log_normal, q_log_normal. Every value
// is checked by the config itself, and every error names the file, line and field:
//
//	configs/sweeps/x.yaml:7: parameters.train.lrr: unknown config key (did you mean train.lr?)
//
// A top-level "seed" (a mami extension) seeds random and bayes sampling.
//
// # Search
//
// Grid trials enumerate the cartesian product, the first parameter varying slowest. Random trial k draws
// from a generator seeded by (seed, k), so Spec.TrialParams(k) is the same on every machine (the basis of
// `mami sweep --trial K` and Slurm arrays). Bayes fits a Gaussian process (Matérn 5/2 kernel, one
// length-scale per parameter, standardised targets, hyperparameters by maximum marginal likelihood with
// Nelder–Mead) on the parameters mapped to [0,1] (log scale for log distributions, categoricals one-hot),
// enters running trials at their predicted mean (kriging believer), and proposes the candidate with the
// largest expected improvement among random and local candidates. The first BayesInitial trials are random.
//
// # Early termination
//
// Hyperband compares a running trial at rungs min_iter·eta^k epochs (or max_iter/eta^i, i = 1..s) with the
// trials that reached the same rung, and stops it when its metric is worse than the 1/eta quantile there, as
// W&B's controller does. Stopped trials are early_terminated, a result, not a failure.
//
// # Running
//
// Controller holds the search and the state of one sweep behind the Scheduler interface: Next hands out a
// trial, Report takes epoch-end metric values and answers whether to stop, Finish takes the end of an
// attempt. Runner drives a Controller with local workers and a TrialFunc, keeping <workdir>/sweeps/<id>/
// state.json current so an interrupted sweep resumes where it stopped; a W&B-protocol server can host the
// same Controller for remote agents. Crashed trials are retried MaxRetries times; MaxConsecutiveFailures
// failed attempts in a row stop the sweep.
package sweep
