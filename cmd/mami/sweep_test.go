package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/experiments/sweep"
	"github.com/mami-lab/mami/runs"
)

const testSweep = `name: t
method: random
run_cap: 6
seed: 3
metric: {name: val/f1_macro, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-1}
  model.fusion: {values: [concat, gmu, late]}
`

func runMami(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func writeSweep(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSweepTrialReproducible(t *testing.T) {
	t.Setenv("MAMI_WORKDIR", t.TempDir())
	file := writeSweep(t, testSweep)
	all, err := runMami(t, "sweep", file, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(all), "\n")
	if len(lines) != 6 {
		t.Fatalf("got %d trials, want 6:\n%s", len(lines), all)
	}
	for k := 5; k >= 0; k-- {
		one, err := runMami(t, "sweep", file, "--dry-run", "--trial", string(rune('0'+k)))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(one) != lines[k] {
			t.Errorf("trial %d alone: %q, in the list: %q", k, one, lines[k])
		}
	}
	again, _ := runMami(t, "sweep", file, "--dry-run")
	if again != all {
		t.Errorf("a second listing differs:\n%s\nvs\n%s", again, all)
	}
	if _, err := runMami(t, "sweep", file, "--dry-run", "--trial", "6"); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("trial 6 of 6: got %v", err)
	}
	// a different base config is a different sweep: other run ids, same parameters
	other, _ := runMami(t, "sweep", file, "--dry-run", "--set", "train.epochs=3")
	otherLines := strings.Split(strings.TrimSpace(other), "\n")
	for k := range lines {
		id, params, _ := strings.Cut(lines[k], " ")
		oid, oparams, _ := strings.Cut(otherLines[k], " ")
		if id == oid || params != oparams {
			t.Errorf("--set train.epochs=3, trial %d: got %q, want the parameters %q under another sweep id", k, otherLines[k], params)
		}
	}
}

func TestSweepEmitSlurm(t *testing.T) {
	file := writeSweep(t, testSweep)
	out, err := runMami(t, "sweep", file, "--emit", "slurm", "-c", "seed", "--set", "train.epochs=2")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --array=0-5\n", "sweep " + file + " -c seed --set train.epochs=2 --trial \"$SLURM_ARRAY_TASK_ID\""} {
		if !strings.Contains(out, want) {
			t.Errorf("script lacks %q:\n%s", want, out)
		}
	}
	script := filepath.Join(t.TempDir(), "job.sbatch")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		if msg, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, msg)
		}
	}
	if _, err := runMami(t, "sweep", file, "--emit", "pbs"); err == nil {
		t.Error("--emit pbs accepted")
	}
}

func TestSweepFileErrors(t *testing.T) {
	file := writeSweep(t, "method: grid\nparameters:\n  train:\n    parameters:\n      lrr: {values: [0.1]}\n")
	_, err := runMami(t, "sweep", file, "--dry-run")
	if err == nil || !strings.Contains(err.Error(), file+":5: parameters.train.parameters.lrr: unknown config key (did you mean train.lr?)") {
		t.Errorf("got %v", err)
	}
	bad := writeSweep(t, "method: grid\nparameters:\n  model.fusion: {values: [concat, late]}\n  model.head: {value: double_softmax}\n")
	if _, err := runMami(t, "sweep", bad, "--dry-run"); err == nil || !strings.Contains(err.Error(), "trial 1") {
		t.Errorf("double_softmax with late: got %v", err)
	}
}

func TestEpochWatcher(t *testing.T) {
	var got []int
	var f1 []float64
	w := sweep.EpochReporter(func(epoch int, m map[string]float64) {
		got = append(got, epoch)
		f1 = append(f1, m["val/f1_macro"])
	})
	rows := []map[string]any{
		{"_step": 1.0, "epoch": 1.0, "train/loss": 0.7},
		{"_step": 2.0, "epoch": 1.0, "train/loss": 0.6, runs.EpochEndKey: 0.65, "val/f1_macro": 0.5},
		{"_step": 3.0, "epoch": 2, "train/loss": 0.5, runs.EpochEndKey: 0.5, "val/f1_macro": 0.6},
	}
	for _, r := range rows {
		if err := w.Log(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 || f1[1] != 0.6 {
		t.Errorf("got epochs %v values %v, want [1 2] [0.5 0.6]", got, f1)
	}
}

func TestMoveAside(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "runs", "sw1-t0")
	dest := filepath.Join(dir, "sweeps", "sw1", "attempts")
	for i := 1; i <= 2; i++ {
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := moveAside(run, dest); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dest, "sw1-t0."+string(rune('0'+i)))); err != nil {
			t.Errorf("attempt %d not moved: %v", i, err)
		}
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("run dir still there: %v", err)
	}
	if err := moveAside(filepath.Join(dir, "none"), dest); err != nil {
		t.Errorf("missing dir: %v", err)
	}
}
