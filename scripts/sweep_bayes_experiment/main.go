// Command sweep_bayes_experiment measures the sweep engine's search on real training: bayes against a grid,
// and hyperband on a learning-rate sweep with diverging rates. It prints a Markdown report (recorded in
// docs/sweeps.md). Defaults reproduce the recorded run (about 25 minutes on a loaded 2-core machine):
//
//	CGO_LDFLAGS=-lopenblas go run -tags openblas ./scripts/sweep_bayes_experiment   # or without OpenBLAS: slower
//	go run ./scripts/sweep_bayes_experiment -parts B -eta 2 -reps 4                  # hyperband only
//	go run ./scripts/sweep_bayes_experiment -objective standin                       # a smooth stand-in, seconds
//
// Experiment A (-epochs, default 5): a 7×4 grid over train.lr and model.dropout gives the reference best
// val/f1_macro; bayes (train.lr log-uniform 1e-5…1e-1, model.dropout uniform 0…0.6) runs half as many
// trials, once per sweep seed, and passes when its best is within 1% of the grid's best in every
// repetition. Part R adds random search with the same budget as a baseline.
//
// Experiment B (-hb-epochs, default 10): an lr grid from 1e-5 to 3 (the top rates diverge), run once to the
// end and then, per repetition, in a seeded random order under hyperband (-min-iter 2, -eta 3): it passes
// when at least 30% of the runs are stopped and the best full-length configuration never is.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/experiments/sweep"
)

func main() {
	reps := flag.Int("reps", 3, "repetitions (bayes sweep seeds; hyperband orders)")
	epochs := flag.Int("epochs", 5, "training epochs per trial of experiment A")
	parallel := flag.Int("parallel", runtime.NumCPU(), "trials run at once")
	objective := flag.String("objective", "real", "real (train on the synthetic dataset) or standin (a smooth function)")
	workdir := flag.String("workdir", "", "where sweep states go (default: a temporary directory)")
	parts := flag.String("parts", "ARB", "experiments to run: A (bayes vs grid), R (with a random-search baseline in A), B (hyperband)")
	minIter := flag.Int("min-iter", 2, "hyperband min_iter of experiment B")
	hbEpochs := flag.Int("hb-epochs", 10, "training epochs per trial of experiment B")
	eta := flag.Float64("eta", 3, "hyperband eta of experiment B")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	hb := hyperbandSettings{minIter: *minIter, eta: *eta, epochs: *hbEpochs}
	if err := run(ctx, *reps, *epochs, *parallel, *objective, *workdir, *parts, hb); err != nil {
		fmt.Fprintln(os.Stderr, "sweep_bayes_experiment:", err)
		os.Exit(1)
	}
}

// hyperbandSettings configures experiment B's early termination.
type hyperbandSettings struct {
	minIter int
	eta     float64
	epochs  int
}

func run(ctx context.Context, reps, epochs, parallel int, objective, workdir, parts string, hb hyperbandSettings) error {
	var trial sweep.TrialFunc
	switch objective {
	case "real":
		t, err := realTrainer(ctx)
		if err != nil {
			return err
		}
		trial = t
	case "standin":
		trial = standin
	default:
		return fmt.Errorf("-objective %q: want real or standin", objective)
	}
	if workdir == "" {
		dir, err := os.MkdirTemp("", "sweep-experiment-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		workdir = dir
	}
	host, _ := os.Hostname()
	fmt.Printf("# sweep experiment\n\n%s, %s, %s/%s, %d CPUs, GOMAXPROCS %d; objective %s, %d parallel, %d repetitions; A: %d epochs per trial; B: %d epochs, hyperband min_iter %d eta %g\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		objective, parallel, reps, epochs, hb.epochs, hb.minIter, hb.eta)
	env := &env{ctx: ctx, trial: trial, workdir: workdir, parallel: parallel, epochs: epochs, hb: hb}
	var results []string
	if strings.Contains(parts, "A") {
		ok, err := env.bayesVsGrid(reps, strings.Contains(parts, "R"))
		if err != nil {
			return err
		}
		results = append(results, "bayes within 1% of the grid's best in half the trials: "+pass(ok))
	}
	if strings.Contains(parts, "B") {
		ok, err := env.hyperband(reps)
		if err != nil {
			return err
		}
		results = append(results, "hyperband stops ≥30% of the runs, never the best: "+pass(ok))
	}
	fmt.Printf("\n**result**: %s\n", strings.Join(results, "; "))
	return nil
}

func pass(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

type env struct {
	ctx      context.Context
	trial    sweep.TrialFunc
	workdir  string
	parallel int
	epochs   int
	hb       hyperbandSettings
}

// sweep parses src and runs it to the end with the experiment's trainer.
func (e *env) sweep(name, src string, epochs int) (*sweep.Spec, *sweep.State, time.Duration, error) {
	spec, err := sweep.Parse(name+".yaml", []byte(src))
	if err != nil {
		return nil, nil, 0, err
	}
	base := configs.Default()
	base.Workdir = e.workdir
	base.Train.Epochs = epochs
	base.Train.EvalTest = false
	base.Tracking.Mode = "disabled"
	id, err := sweep.ID(spec, base)
	if err != nil {
		return nil, nil, 0, err
	}
	start := time.Now()
	r := &sweep.Runner{Spec: spec, Base: base, ID: id, Dir: sweep.Dir(e.workdir, id), Parallel: e.parallel, Trial: e.trial}
	st, err := r.Run(e.ctx)
	return spec, st, time.Since(start), err
}

const metricYAML = "metric: {name: val/f1_macro, goal: maximize}\n"

func (e *env) bayesVsGrid(reps int, baseline bool) (bool, error) {
	grid := "method: grid\n" + metricYAML + `parameters:
  train.lr: {values: [1.0e-5, 1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 1.0e-1]}
  model.dropout: {values: [0.0, 0.2, 0.4, 0.6]}
`
	gspec, gst, took, err := e.sweep("grid-lr-dropout", grid, e.epochs)
	if err != nil {
		return false, err
	}
	gbest := gst.Best(gspec.Metric)
	if gbest == nil {
		return false, fmt.Errorf("the grid produced no metric")
	}
	gval := float64(*gbest.Metric)
	budget := len(gst.Trials) / 2
	fmt.Printf("## A. bayes vs grid\n\ngrid: %d trials in %s; best val/f1_macro %.4f at %s\n\n",
		len(gst.Trials), took.Round(time.Second), gval, sweep.FormatParams(gspec, gbest.Params))
	printGrid(gst)
	fmt.Printf("bayes: train.lr log-uniform 1e-5…1e-1, model.dropout uniform 0…0.6, run_cap %d (half the grid)\n\n", budget)
	fmt.Println("| seed | best val/f1_macro | vs grid | trials to reach 99% of grid best | best params | time |")
	fmt.Println("|---:|---:|---:|---:|---|---:|")
	methods := []string{"bayes"}
	if baseline {
		methods = append(methods, "random")
	}
	allOK := true
	for _, method := range methods {
		if method == "random" {
			fmt.Printf("\nbaseline: random search over the same space, same budget\n\n")
			fmt.Println("| seed | best val/f1_macro | vs grid | trials to reach 99% of grid best | best params | time |")
			fmt.Println("|---:|---:|---:|---:|---|---:|")
		}
		for seed := range reps {
			src := fmt.Sprintf("method: %s\nseed: %d\nrun_cap: %d\n", method, seed, budget) + metricYAML + `parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-1}
  model.dropout: {distribution: uniform, min: 0.0, max: 0.6}
`
			spec, st, took, err := e.sweep(fmt.Sprintf("%s-%d", method, seed), src, e.epochs)
			if err != nil {
				return false, err
			}
			best := st.Best(spec.Metric)
			if best == nil {
				return false, fmt.Errorf("bayes seed %d produced no metric", seed)
			}
			reach := "never"
			running := math.Inf(-1)
			for i, t := range st.Trials {
				if t.Metric != nil {
					running = max(running, float64(*t.Metric))
				}
				if running >= 0.99*gval {
					reach = fmt.Sprint(i + 1)
					break
				}
			}
			v := float64(*best.Metric)
			if method == "bayes" {
				allOK = allOK && v >= 0.99*gval
			}
			fmt.Printf("| %d | %.4f | %+.2f%% | %s | %s | %s |\n", seed, v, 100*(v/gval-1), reach, sweep.FormatParams(spec, best.Params), took.Round(time.Second))
		}
	}
	return allOK, nil
}

func (e *env) hyperband(reps int) (bool, error) {
	lrs := []string{"1.0e-5", "3.0e-5", "1.0e-4", "3.0e-4", "1.0e-3", "3.0e-3", "1.0e-2", "3.0e-2", "1.0e-1", "3.0e-1", "1.0", "3.0"}
	full := "method: grid\n" + metricYAML + "parameters:\n  train.lr: {values: [" + strings.Join(lrs, ", ") + "]}\n"
	fspec, fst, took, err := e.sweep("lr-full", full, e.hb.epochs)
	if err != nil {
		return false, err
	}
	fbest := fst.Best(fspec.Metric)
	if fbest == nil {
		return false, fmt.Errorf("the lr grid produced no metric")
	}
	bestLR := fbest.Params["train.lr"]
	fmt.Printf("\n## B. hyperband on an lr sweep with diverging rates\n\nfull runs (%d epochs): %d trials in %s; best val/f1_macro %.4f at train.lr=%v\n\n",
		e.hb.epochs, len(fst.Trials), took.Round(time.Second), float64(*fbest.Metric), bestLR)
	fmt.Println("| train.lr | full-run val/f1_macro |")
	fmt.Println("|---:|---:|")
	for _, t := range fst.Trials {
		m := math.NaN()
		if t.Metric != nil {
			m = float64(*t.Metric)
		}
		fmt.Printf("| %v | %.4f |\n", t.Params["train.lr"], m)
	}
	et := fmt.Sprintf("early_terminate: {type: hyperband, min_iter: %d, eta: %g}\n", e.hb.minIter, e.hb.eta)
	rungs := (&sweep.Hyperband{MinIter: e.hb.minIter, Eta: e.hb.eta}).Rungs(e.hb.epochs)
	fmt.Printf("\nhyperband (min_iter %d, eta %g; rungs at epochs %v), one seeded order of the rates per repetition:\n", e.hb.minIter, e.hb.eta, rungs)
	fmt.Println()
	fmt.Println("| order seed | stopped | best kept | best full-run F1 among kept (regret) | epochs trained (vs full) | time |")
	fmt.Println("|---:|---:|---|---:|---:|---:|")
	fullF1 := map[float64]float64{}
	for _, t := range fst.Trials {
		if lr, ok := t.Params["train.lr"].(float64); ok && t.Metric != nil {
			fullF1[lr] = float64(*t.Metric)
		}
	}
	allOK := true
	for rep := range reps {
		order := append([]string(nil), lrs...)
		rng := rand.New(rand.NewPCG(uint64(rep), 99))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		src := "method: grid\n" + metricYAML + et +
			fmt.Sprintf("parameters:\n  train.lr: {values: [%s]}\n", strings.Join(order, ", "))
		_, st, took, err := e.sweep(fmt.Sprintf("hyperband-%d", rep), src, e.hb.epochs)
		if err != nil {
			return false, err
		}
		stopped, trained := 0, 0
		bestKept := true
		keptBest := math.Inf(-1)
		for _, t := range st.Trials {
			trained += len(t.Curve)
			if lr, ok := t.Params["train.lr"].(float64); ok && t.State != sweep.TrialEarlyTerminated {
				keptBest = max(keptBest, fullF1[lr])
			}
			if t.State == sweep.TrialEarlyTerminated {
				stopped++
				if sameLR(t.Params["train.lr"], bestLR) {
					bestKept = false
				}
			}
		}
		frac := float64(stopped) / float64(len(st.Trials))
		ok := frac >= 0.3 && bestKept
		allOK = allOK && ok
		fbestV := float64(*fbest.Metric)
		fmt.Printf("| %d | %d of %d (%.0f%%) | %v | %.4f (%.2f%%) | %d of %d | %s |\n", rep, stopped, len(st.Trials), 100*frac, bestKept,
			keptBest, 100*(fbestV-keptBest)/fbestV, trained, len(st.Trials)*e.hb.epochs, took.Round(time.Second))
	}
	return allOK, nil
}

func sameLR(a, b any) bool {
	fa, oka := a.(float64)
	fb, okb := b.(float64)
	return oka && okb && math.Abs(fa-fb) <= 1e-12*math.Max(1, math.Abs(fb))
}

// standin is a smooth stand-in objective with a divergence cliff, for checking the script quickly.
func standin(ctx context.Context, cfg *configs.Config, report func(int, map[string]float64)) (sweep.Result, error) {
	lr, p := cfg.Train.LR, cfg.Model.Dropout
	d := math.Log10(lr) + 2.7
	final := 0.75 - 0.05*d*d - 0.3*(p-0.25)*(p-0.25)
	var v float64
	for e := 1; e <= cfg.Train.Epochs; e++ {
		v = final - (final-0.3)*math.Exp(-float64(e)*math.Min(1, lr*1000)/2)
		if lr > 0.03 {
			v = 0.35
		}
		report(e, map[string]float64{"val/f1_macro": v})
		if ctx.Err() != nil {
			return sweep.Result{State: sweep.OutcomeStopped, Summary: map[string]any{"val/f1_macro": v}}, nil
		}
	}
	return sweep.Result{State: sweep.OutcomeFinished, Summary: map[string]any{"val/f1_macro": v}}, nil
}

// printGrid writes the grid's val/f1_macro as a table: one row per learning rate, one column per dropout.
func printGrid(st *sweep.State) {
	var lrs, drops []float64
	cell := map[[2]float64]float64{}
	for _, t := range st.Trials {
		lr, _ := t.Params["train.lr"].(float64)
		d, _ := t.Params["model.dropout"].(float64)
		if !slices.Contains(lrs, lr) {
			lrs = append(lrs, lr)
		}
		if !slices.Contains(drops, d) {
			drops = append(drops, d)
		}
		cell[[2]float64{lr, d}] = math.NaN()
		if t.Metric != nil {
			cell[[2]float64{lr, d}] = float64(*t.Metric)
		}
	}
	fmt.Print("| train.lr \\ model.dropout |")
	for _, d := range drops {
		fmt.Printf(" %g |", d)
	}
	fmt.Print("\n|---:|")
	fmt.Println(strings.Repeat("---:|", len(drops)))
	for _, lr := range lrs {
		fmt.Printf("| %g |", lr)
		for _, d := range drops {
			fmt.Printf(" %.4f |", cell[[2]float64{lr, d}])
		}
		fmt.Println()
	}
	fmt.Println()
}
