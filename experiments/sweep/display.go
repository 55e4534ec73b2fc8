package sweep

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Display shows a sweep's progress: one line redrawn in place on a terminal, or a plain line whenever the
// counts or the best trial change otherwise. It is safe for concurrent use.
type Display struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	spec     *Spec
	last     string
	drawn    bool
	start    time.Time
	interval time.Duration
}

// NewDisplay returns a display of spec's progress on w; tty selects in-place redrawing.
func NewDisplay(w io.Writer, tty bool, spec *Spec) *Display {
	return &Display{w: w, tty: tty, spec: spec, start: time.Now()}
}

// Status is the one-line summary of st: "3 done · 2 running · 23 left · best val/f1_macro 0.7123 (t5 ...)".
func Status(spec *Spec, st *State) string {
	done, running, left := st.Counts()
	leftS := fmt.Sprint(left)
	if left < 0 {
		leftS = "∞"
	}
	s := fmt.Sprintf("sweep %s: %d done · %d running · %s left", st.ID, done, running, leftS)
	if b := st.Best(spec.Metric); b != nil {
		s += fmt.Sprintf(" · best %s %.4f (t%d %s)", spec.Metric.Name, float64(*b.Metric), b.Index, FormatParams(spec, b.Params))
	}
	return s
}

// Update shows st.
func (d *Display) Update(st *State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	line := Status(d.spec, st)
	if line == d.last {
		return
	}
	d.last = line
	if d.tty {
		fmt.Fprintf(d.w, "\r\033[K%s [%s]", line, time.Since(d.start).Round(time.Second))
		d.drawn = true
		return
	}
	fmt.Fprintln(d.w, line)
}

// Close ends an in-place line with a newline.
func (d *Display) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tty && d.drawn {
		fmt.Fprintln(d.w)
		d.drawn = false
	}
}

// WriteTable writes the trials of st as a table (trial, each swept parameter, state, metric, run id),
// then the best trial's configuration.
func WriteTable(w io.Writer, spec *Spec, st *State) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	params := spec.swept()
	head := []string{"trial"}
	for _, p := range params {
		head = append(head, p.Key)
	}
	head = append(head, "state", spec.Metric.Name, "run")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	best := st.Best(spec.Metric)
	for _, t := range st.Trials {
		row := []string{fmt.Sprint(t.Index)}
		for _, p := range params {
			row = append(row, formatValue(t.Params[p.Key]))
		}
		m := "-"
		if t.Metric != nil {
			m = fmt.Sprintf("%.4f", float64(*t.Metric))
		}
		if t == best {
			m = "*" + m
		}
		state := t.State
		if t.State == TrialEarlyTerminated && t.StoppedAt > 0 {
			state = fmt.Sprintf("%s@%d", t.State, t.StoppedAt)
		}
		row = append(row, state, m, t.RunID)
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write sweep table: %w", err)
	}
	if best == nil {
		_, err := fmt.Fprintf(w, "no trial reported %s\n", spec.Metric.Name)
		return err
	}
	fmt.Fprintf(w, "\nbest: trial %d, %s = %.4f\n", best.Index, spec.Metric.Name, float64(*best.Metric))
	for _, p := range spec.Params {
		fmt.Fprintf(w, "  %s: %s\n", p.Key, formatValue(best.Params[p.Key]))
	}
	if best.RunDir != "" {
		fmt.Fprintf(w, "  run: %s\n", best.RunDir)
	}
	return nil
}
