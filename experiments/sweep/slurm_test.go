package sweep_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mami-lab/mami/experiments/sweep"
)

func TestEmitSlurm(t *testing.T) {
	spec := mustParse(t, lrGrid)
	var b bytes.Buffer
	err := sweep.EmitSlurm(&b, spec, sweep.SlurmOptions{SweepFile: "configs/sweeps/my sweep.yaml", Config: "seed",
		Sets: []string{"train.epochs=3", "run.notes=it's a test"}, CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	script := b.String()
	for _, want := range []string{
		"#SBATCH --array=0-27\n",
		"#SBATCH --cpus-per-task=2\n",
		`exec mami sweep 'configs/sweeps/my sweep.yaml' -c seed --set train.epochs=3 --set 'run.notes=it'\''s a test' --trial "$SLURM_ARRAY_TASK_ID"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	path := filepath.Join(t.TempDir(), "sweep.sbatch")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
	// run it with a stand-in mami that prints its arguments
	bin := filepath.Join(t.TempDir(), "mami")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nprintf '%s|' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b2 bytes.Buffer
	if err := sweep.EmitSlurm(&b2, spec, sweep.SlurmOptions{SweepFile: "s.yaml", Sets: []string{"run.notes=it's"}, Binary: bin}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, "-c", b2.String())
	cmd.Env = append(os.Environ(), "SLURM_ARRAY_TASK_ID=7")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running the script: %v\n%s", err, out)
	}
	if got, want := string(out), "sweep|s.yaml|--set|run.notes=it's|--trial|7|"; got != want {
		t.Errorf("mami got arguments %q, want %q", got, want)
	}

	bayes := mustParse(t, "method: bayes\nmetric: {name: m}\nrun_cap: 4\nparameters:\n  train.lr: {min: 0.001, max: 0.1}\n")
	if err := sweep.EmitSlurm(&b, bayes, sweep.SlurmOptions{SweepFile: "x"}); err == nil {
		t.Error("bayes sweep became a Slurm array")
	}
	random := mustParse(t, "method: random\nparameters:\n  train.lr: {min: 0.001, max: 0.1}\n")
	if err := sweep.EmitSlurm(&b, random, sweep.SlurmOptions{SweepFile: "x"}); err == nil || !strings.Contains(err.Error(), "run_cap") {
		t.Errorf("random without run_cap: got %v", err)
	}
}

func TestDisplayTerminal(t *testing.T) {
	spec := mustParse(t, lrGrid)
	st := &sweep.State{ID: "sw1", Total: 28, Trials: []*sweep.TrialRecord{{Index: 0, State: sweep.TrialRunning, Params: map[string]any{}}}}
	var b bytes.Buffer
	d := sweep.NewDisplay(&b, true, spec)
	d.Update(st)
	d.Update(st) // unchanged: not redrawn
	d.Close()
	if got := b.String(); strings.Count(got, "\r\033[K") != 1 || !strings.Contains(got, "sweep sw1: 0 done · 1 running · 27 left") || !strings.HasSuffix(got, "\n") {
		t.Errorf("got %q", got)
	}
}
