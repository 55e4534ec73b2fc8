package sweep

import (
	"fmt"
	"io"
	"strings"
)

// SlurmOptions says how the array job calls mami.
type SlurmOptions struct {
	SweepFile string   // path of the sweep file as the job sees it
	Config    string   // -c value, "" for none
	Sets      []string // --set values
	Binary    string   // the mami executable; default "mami"
	// CPUs per array task; 0 leaves it to the cluster's default.
	CPUs int
}

// EmitSlurm writes an sbatch script running every trial of a grid or random sweep as one element of a job
// array: `sbatch --array=0-(N-1)` calling `mami sweep FILE --trial $SLURM_ARRAY_TASK_ID`.
func EmitSlurm(w io.Writer, spec *Spec, opts SlurmOptions) error {
	if spec.Method == MethodBayes {
		return fmt.Errorf("sweep %s: bayes trials depend on each other's results; a Slurm array needs a grid or random sweep", spec.File)
	}
	n := spec.TrialCount()
	if n == 0 {
		return fmt.Errorf("sweep %s: a random sweep needs run_cap to become a Slurm array", spec.File)
	}
	bin := opts.Binary
	if bin == "" {
		bin = "mami"
	}
	args := []string{shellQuote(bin), "sweep", shellQuote(opts.SweepFile)}
	if opts.Config != "" {
		args = append(args, "-c", shellQuote(opts.Config))
	}
	for _, s := range opts.Sets {
		args = append(args, "--set", shellQuote(s))
	}
	args = append(args, "--trial", `"$SLURM_ARRAY_TASK_ID"`)
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# Slurm array job for sweep %s (%s, %d trials); submit with: sbatch THIS_FILE\n", spec.Name, spec.Method, n)
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", slurmName("mami-"+spec.Name))
	fmt.Fprintf(&b, "#SBATCH --array=0-%d\n", n-1)
	b.WriteString("#SBATCH --output=mami-sweep-%A_%a.out\n")
	if opts.CPUs > 0 {
		fmt.Fprintf(&b, "#SBATCH --cpus-per-task=%d\n", opts.CPUs)
	}
	b.WriteString("set -euo pipefail\n")
	b.WriteString(`: "${SLURM_ARRAY_TASK_ID:?run this script with sbatch --array}"` + "\n")
	b.WriteString("exec " + strings.Join(args, " ") + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// shellQuote quotes s for bash when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func slurmName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
