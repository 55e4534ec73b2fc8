package wandb

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestBatchCutAnywhere cuts a batch into random parts, as 413 answers would, and acknowledges them in
// order: the state and the lines the server gets at each offset are those of the whole batch at once.
func TestBatchCutAnywhere(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var hist, events, out strings.Builder
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&hist, "{\"_step\":%d}\n", i)
		if i%7 == 0 {
			hist.WriteString("\n") // a blank line, read past
		}
		if i%3 == 0 {
			fmt.Fprintf(&events, "{\"system.cpu\":%d}\n", i)
		}
		if i%5 == 0 {
			fmt.Fprintf(&out, "line %d\n", i)
		}
	}
	hist.WriteString("{\"_step\":41,\"torn") // a torn last write, not read
	write(HistoryFile, hist.String())
	write(EventsFile, events.String())
	write(OutputFile, out.String())
	write(SummaryFile, `{"best": 1}`)

	sn := &sender{dir: dir, opts: Options{}.withDefaults(), st: &syncState{
		History: cursor{Line: 3}, StepOffset: 100, Reported: map[string]bool{"config.yaml": false, "plots/a.png": true}}}
	whole, err := sn.build(true)
	if err != nil {
		t.Fatal(err)
	}
	whole.complete, whole.exitCode = true, 3
	if n := whole.records(); n != 40+13+8+1 {
		t.Fatalf("%d records, want 62", n)
	}
	want := sn.state()
	if err := whole.ack(want, true); err != nil {
		t.Fatal(err)
	}
	wantLines := placed(t, sn.state(), []*batch{whole})

	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		parts := []*batch{whole}
		for range 1 + rng.IntN(40) { // cut a random part in halves, as a 413 would
			i := rng.IntN(len(parts))
			if parts[i].records() < 2 {
				continue
			}
			a, b := parts[i].split()
			parts = append(parts[:i], append([]*batch{a, b}, parts[i+1:]...)...)
		}
		st := sn.state()
		got := placed(t, st, parts)
		for i, p := range parts {
			if err := p.ack(st, true); err != nil {
				t.Fatalf("trial %d: part %d of %d: %v", trial, i, len(parts), err)
			}
			// What is left to read from the acknowledged offsets is exactly what the later parts carry.
			rest := &sender{dir: dir, opts: sn.opts, st: st.clone()}
			again, err := rest.build(true)
			if err != nil {
				t.Fatal(err)
			}
			for f := range numFiles {
				var left []string
				for _, q := range parts[i+1:] {
					left = append(left, q.files[f].text...)
				}
				if got := again.files[f].text; strings.Join(stripTime(f, got), "\n") != strings.Join(stripTime(f, left), "\n") {
					t.Fatalf("trial %d: after part %d of %d, %s reads %q from byte %d, want %q", trial, i, len(parts), streamFiles[f].local, got, st.cursorOf(f).Byte, left)
				}
			}
			if (p.complete || len(p.uploaded) > 0) && i != len(parts)-1 {
				t.Errorf("trial %d: part %d of %d reports complete or uploaded names, want only the last", trial, i, len(parts))
			}
		}
		if !reflect.DeepEqual(st, want) {
			t.Errorf("trial %d (%d parts): state %+v, want %+v", trial, len(parts), st, want)
		}
		if !reflect.DeepEqual(got, wantLines) {
			t.Errorf("trial %d (%d parts): the server would hold %v, want %v", trial, len(parts), got, wantLines)
		}
	}
}

// placed sends parts, in order, to a server that keeps lines at their offsets, from state st.
func placed(t *testing.T, st *syncState, parts []*batch) map[string][]string {
	t.Helper()
	st = st.clone()
	server := map[string][]string{}
	for _, p := range parts {
		body, err := p.encode(st)
		if err != nil {
			t.Fatal(err)
		}
		var req fileStreamBody
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatal(err)
		}
		for name, c := range req.Files {
			for i, l := range c.Content {
				have := server[name]
				for int64(len(have)) <= c.Offset+int64(i) {
					have = append(have, "")
				}
				have[c.Offset+int64(i)] = l
				server[name] = have
			}
		}
		if err := p.ack(st, true); err != nil {
			t.Fatal(err)
		}
	}
	return server
}

// stripTime drops the time output lines are sent with.
func stripTime(f int, lines []string) []string {
	if f != fileOutput {
		return lines
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l[min(len(l), len("2006-01-02T15:04:05.000000 ")):]
	}
	return out
}
