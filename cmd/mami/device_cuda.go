//go:build mamicuda

package main

// The CUDA build (make build-cuda → bin/mami-cuda): device selection, and `mami gpu`, the GPU checks
// scripts/gpu-check.sh runs on a GPU machine (parity against the CPU backend, training speed).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mami-lab/mami/configs"
	"github.com/mami-lab/mami/data"
	"github.com/mami-lab/mami/experiments"
	"github.com/mami-lab/mami/models"
	"github.com/mami-lab/mami/models/cuda"
)

// The GPU's Net is what the trainer drives on device cuda, with the training split resident on the GPU.
var _ experiments.RowBackend = (*cuda.Net)(nil)

// selectDevice checks cfg.Device against this binary and the machine, settles "auto" and returns the
// trainer's backend constructor (nil: the CPU backend). cuda without a usable GPU is an error naming the
// reason; auto trains on the GPU when there is one, else falls back to the CPU and says why.
func selectDevice(cfg *configs.Config, log *slog.Logger) (experiments.NewBackendFunc, error) {
	switch cfg.Device {
	case "", "cpu":
		cfg.Device = "cpu"
	case "auto":
		dev, err := cuda.Probe()
		if err != nil {
			log.Info("device auto: no usable GPU, training on the CPU", "reason", err.Error())
			cfg.Device = "cpu"
			return nil, nil
		}
		log.Info("device auto: training on the GPU", "gpu", dev.Name, "driver", dev.Driver, "target", dev.Target)
		cfg.Device = "cuda"
		return newCUDABackend, nil
	case "cuda":
		dev, err := cuda.Probe()
		if err != nil {
			return nil, fmt.Errorf("device cuda: %w; set device: cpu or auto", err)
		}
		log.Info("device cuda: training on the GPU", "gpu", dev.Name, "driver", dev.Driver, "target", dev.Target)
		return newCUDABackend, nil
	}
	return nil, nil
}

// newCUDABackend builds spec on the GPU with models.New(spec, seed)'s weights and tc's optimizer; dropout
// masks are drawn on the device (same distribution as the CPU backend's, other masks).
func newCUDABackend(spec models.Spec, seed int64, tc configs.TrainConfig) (experiments.Backend, error) {
	n, err := cuda.New(spec, seed)
	if err != nil {
		return nil, err
	}
	if err := n.SetOptimizer(tc.Optimizer, tc.Beta1, tc.Beta2, tc.Eps, tc.WeightDecay); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

func init() { register(newGPUCmd) }

func newGPUCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gpu",
		Short: "check the CUDA backend on this machine: device info, parity with the CPU backend, training speed",
	}
	cmd.AddCommand(newGPUInfoCmd(), newGPUParityCmd(), newGPUBenchCmd())
	return cmd
}

func newGPUInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "print the GPU the CUDA backend would use, as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev, err := cuda.Probe()
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), dev)
		},
	}
}

// syntheticRows returns the first rows memes of the synthetic training set (all when rows <= 0).
func syntheticRows(rows int) (image, text, labels []float32, dim int, err error) {
	train, _ := data.Synthetic()
	n := train.Len()
	if rows > 0 && rows < n {
		n = rows
	}
	dim = train.Dim
	labels = make([]float32, n)
	for i, y := range train.Labels()[:n] {
		labels[i] = float32(y)
	}
	if n == 0 {
		return nil, nil, nil, 0, errors.New("synthetic data set is empty")
	}
	return train.Image[:n*dim], train.Text[:n*dim], labels, dim, nil
}

// parityLine is one row of `mami gpu parity`'s output.
type parityLine struct {
	cuda.ParityResult
	OK      bool    `json:"ok"`
	Seconds float64 `json:"seconds"`
}

func newGPUParityCmd() *cobra.Command {
	var rows, epochs int
	var tol float64
	var out, backend, only string
	var allHeads bool
	cmd := &cobra.Command{
		Use:   "parity",
		Short: "train every fusion on the GPU and the CPU side by side; compare gradients and losses",
		Long: "Trains every fusion (softmax_ce head, and concat with every head; --all-heads for every pair) on the\n" +
			"first --rows synthetic memes for --epochs epochs with AdamW, on the GPU and on the CPU backend from the\n" +
			"same initial weights, dropout masks and batches, and fails unless first-step gradients, every epoch's\n" +
			"training loss and the final eval loss agree within --tol (relative).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			newNet, err := netConstructor(backend)
			if err != nil {
				return err
			}
			image, text, labels, dim, err := syntheticRows(rows)
			if err != nil {
				return err
			}
			fusions := models.Fusions()
			if only != "" {
				fusions = strings.Split(only, ",")
				for _, f := range fusions {
					if !slices.Contains(models.Fusions(), f) {
						return fmt.Errorf("--fusions: unknown fusion %q (have %s)", f, strings.Join(models.Fusions(), ", "))
					}
				}
			}
			var cases [][2]string
			for _, f := range fusions {
				for _, h := range models.Heads() {
					if allHeads || h == models.HeadSoftmaxCE || f == models.FusionConcat {
						cases = append(cases, [2]string{f, h})
					}
				}
			}
			var lines []parityLine
			failed := 0
			w := cmd.OutOrStdout()
			for _, c := range cases {
				spec := models.SpecFrom(configs.Default().Model, dim)
				spec.Fusion, spec.Head = c[0], c[1]
				t0 := time.Now()
				res, err := cuda.CheckParity(cuda.ParityConfig{Spec: spec, Seed: 42, Epochs: epochs, Image: image, Text: text, Labels: labels}, newNet)
				if err != nil {
					return fmt.Errorf("parity %s/%s: %w", c[0], c[1], err)
				}
				l := parityLine{ParityResult: res, OK: res.OK(tol), Seconds: time.Since(t0).Seconds()}
				if !l.OK {
					failed++
				}
				lines = append(lines, l)
				fmt.Fprintf(w, "%-10s %-14s grad %.2e  loss %.2e  eval %.2e  cpu %v  gpu %v  %s\n", c[0], c[1],
					res.GradRelDiff, res.LossRelDiff, res.EvalRelDiff, fmtLosses(res.CPULoss), fmtLosses(res.Loss), okWord(l.OK))
			}
			if out != "" {
				if err := writeJSONFile(out, lines); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("gpu parity: %d of %d cases outside %g", failed, len(lines), tol)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&rows, "rows", 2000, "synthetic training memes to train on")
	cmd.Flags().IntVar(&epochs, "epochs", 2, "epochs to train")
	cmd.Flags().Float64Var(&tol, "tol", 1e-3, "largest relative difference allowed")
	cmd.Flags().BoolVar(&allHeads, "all-heads", false, "every fusion with every head")
	cmd.Flags().StringVar(&only, "fusions", "", "comma-separated fusions to check (default: all)")
	cmd.Flags().StringVar(&backend, "backend", "cuda", "cuda, or ref (the Go reference of the kernels: a dry run without a GPU)")
	cmd.Flags().StringVar(&out, "json", "", "also write the results to this JSON file")
	return cmd
}

// netConstructor returns the constructor of a backend's Net: cuda (the GPU) or ref (the kernels' Go twin).
func netConstructor(backend string) (func(models.Spec, int64) (*cuda.Net, error), error) {
	switch backend {
	case "cuda":
		return cuda.New, nil
	case "ref":
		return cuda.NewReference, nil
	}
	return nil, fmt.Errorf("--backend %q: must be cuda or ref", backend)
}

func fmtLosses(ls []float64) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = strconv.FormatFloat(l, 'f', 5, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

// benchLine is one trained (fusion, lr) of `mami gpu bench`.
type benchLine struct {
	Backend       string  `json:"backend"`
	Fusion        string  `json:"fusion"`
	LR            float64 `json:"lr"`
	Epochs        int     `json:"epochs"`
	Samples       int     `json:"samples"`
	Seconds       float64 `json:"seconds"` // inside the training loop
	SamplesPerSec float64 `json:"samples_per_s"`
	FinalLoss     float64 `json:"final_epoch_loss"`
	Threads       int     `json:"threads"`
}

func newGPUBenchCmd() *cobra.Command {
	var backend, fusions, lrs, out string
	var epochs, samples int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "time the bench workload's training loop (configs/bench-seed-head.yaml) per fusion × lr",
		Long: "Trains the bench workload (bce head, hidden [512], dropout 0.2, Adam, batch 64, no clipping) on the\n" +
			"first --samples synthetic memes for each fusion × lr, on --backend cuda (data set resident on the GPU)\n" +
			"or cpu (the models package on this machine's cores), and prints one JSON line per run.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(configs.LoadOptions{File: "bench-seed-head"})
			if err != nil {
				return fmt.Errorf("load the bench-seed-head preset: %w", err)
			}
			image, text, labels, dim, err := syntheticRows(samples)
			if err != nil {
				return err
			}
			var lines []benchLine
			for _, f := range strings.Split(fusions, ",") {
				for _, lrs := range strings.Split(lrs, ",") {
					lr, err := strconv.ParseFloat(strings.TrimSpace(lrs), 64)
					if err != nil {
						return fmt.Errorf("--lrs %q: %w", lrs, err)
					}
					spec := models.SpecFrom(cfg.Model, dim)
					spec.Fusion = strings.TrimSpace(f)
					l, err := benchRun(backend, spec, cfg.Train, lr, epochs, cfg.Run.Seed, image, text, labels)
					if err != nil {
						return fmt.Errorf("bench %s %s lr %g: %w", backend, spec.Fusion, lr, err)
					}
					lines = append(lines, l)
					if err := json.NewEncoder(cmd.OutOrStdout()).Encode(l); err != nil {
						return err
					}
				}
			}
			if out != "" {
				return writeJSONFile(out, lines)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&backend, "backend", "cuda", "cuda, cpu, or ref (the kernels' Go twin: a dry run without a GPU)")
	cmd.Flags().StringVar(&fusions, "fusions", models.FusionConcat, "comma-separated fusions")
	cmd.Flags().StringVar(&lrs, "lrs", "1e-4", "comma-separated learning rates")
	cmd.Flags().IntVar(&epochs, "epochs", 10, "epochs per run")
	cmd.Flags().IntVar(&samples, "samples", 7200, "training memes per epoch (the train split of the default data)")
	cmd.Flags().StringVar(&out, "json", "", "also write the results to this JSON file")
	return cmd
}

// trainable is the part of a model the bench loop drives, on either backend.
type trainable interface {
	step(idx []int) (float64, error)
	close() error
}

type cpuTrainable struct {
	net                 *models.Net
	opt                 models.Optimizer
	clip, lr            float64
	b                   models.Batch
	dim                 int
	image, text, labels []float32
}

func (c *cpuTrainable) step(idx []int) (float64, error) {
	n := len(idx)
	c.b.N = n
	c.b.Image, c.b.Text, c.b.Labels = c.b.Image[:0], c.b.Text[:0], c.b.Labels[:0]
	for _, i := range idx {
		c.b.Image = append(c.b.Image, c.image[i*c.dim:(i+1)*c.dim]...)
		c.b.Text = append(c.b.Text, c.text[i*c.dim:(i+1)*c.dim]...)
		c.b.Labels = append(c.b.Labels, c.labels[i])
	}
	loss, err := c.net.Grad(c.b, 1, false)
	if err != nil {
		return 0, err
	}
	if c.clip > 0 {
		models.ClipGradNorm(c.net.Params(), c.clip)
	}
	c.opt.Step(c.lr)
	return loss, nil
}

func (c *cpuTrainable) close() error { return nil }

type gpuTrainable struct {
	net      *cuda.Net
	clip, lr float64
}

func (g *gpuTrainable) step(idx []int) (float64, error) {
	loss, err := g.net.GradRows(idx, 1, false)
	if err != nil {
		return 0, err
	}
	if g.clip > 0 {
		if _, err := g.net.ClipGradNorm(g.clip); err != nil {
			return 0, err
		}
	}
	return loss, g.net.Step(g.lr)
}

func (g *gpuTrainable) close() error { return g.net.Close() }

// benchRun trains spec for epochs on backend and times the training loop.
func benchRun(backend string, spec models.Spec, tc configs.TrainConfig, lr float64, epochs int, seed int64, image, text, labels []float32) (benchLine, error) {
	var tr trainable
	switch backend {
	case "cpu":
		net, err := models.New(spec, seed)
		if err != nil {
			return benchLine{}, err
		}
		opt, err := models.NewOptimizer(tc.Optimizer, net.Params(), tc.Beta1, tc.Beta2, tc.Eps, tc.WeightDecay)
		if err != nil {
			return benchLine{}, err
		}
		tr = &cpuTrainable{net: net, opt: opt, clip: tc.ClipNorm, lr: lr, dim: spec.ImageDim, image: image, text: text, labels: labels}
	case "cuda", "ref":
		newNet, err := netConstructor(backend)
		if err != nil {
			return benchLine{}, err
		}
		net, err := newNet(spec, seed)
		if err != nil {
			return benchLine{}, err
		}
		if err := net.SetOptimizer(tc.Optimizer, tc.Beta1, tc.Beta2, tc.Eps, tc.WeightDecay); err != nil {
			return benchLine{}, errors.Join(err, net.Close())
		}
		if err := net.UploadSet(image, text, labels); err != nil {
			return benchLine{}, errors.Join(err, net.Close())
		}
		tr = &gpuTrainable{net: net, clip: tc.ClipNorm, lr: lr}
	default:
		return benchLine{}, fmt.Errorf("--backend %q: must be cuda, cpu or ref", backend)
	}
	rows := len(labels)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	var seconds, last float64
	for range epochs {
		batches, err := data.Batches(rows, tc.BatchSize, rng)
		if err != nil {
			return benchLine{}, errors.Join(err, tr.close())
		}
		var sum float64
		t0 := time.Now()
		for _, idx := range batches {
			l, err := tr.step(idx)
			if err != nil {
				return benchLine{}, errors.Join(err, tr.close())
			}
			sum += l * float64(len(idx))
		}
		seconds += time.Since(t0).Seconds()
		last = sum / float64(rows)
	}
	if err := tr.close(); err != nil {
		return benchLine{}, err
	}
	return benchLine{Backend: backend, Fusion: spec.Fusion, LR: lr, Epochs: epochs, Samples: rows * epochs,
		Seconds: seconds, SamplesPerSec: float64(rows*epochs) / seconds, FinalLoss: last, Threads: runtime.GOMAXPROCS(0)}, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeJSONFile(path string, v any) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	return writeJSON(f, v)
}
