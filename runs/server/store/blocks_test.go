package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mami-lab/mami/runs/server/store"
)

func openTuned(t testing.TB, path string, blockSize int, noPack bool, schema int) *store.Store {
	t.Helper()
	s, err := store.OpenTuned(context.Background(), path, blockSize, noPack, schema)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestBlockRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		lines, steps         []int64
		values               []float64
		wantLines, wantSteps []int64
		wantValues           []float64
	}{
		{name: "one", lines: []int64{0}, steps: []int64{0}, values: []float64{1.5}},
		{name: "counting", lines: []int64{10, 11, 12, 13}, steps: []int64{10, 11, 12, 13}, values: []float64{1, 0.5, 0.25, 0.125}},
		{name: "no steps", lines: []int64{3, 9, 200}, steps: []int64{-1, 4, -1}, values: []float64{0, -0.0, 7},
			wantSteps: []int64{-1, 4, -1}},
		{name: "steps jump back", lines: []int64{0, 1, 2, 3}, steps: []int64{100, 5, 1 << 40, 0}, values: []float64{1, 2, 3, 4}},
		{name: "extreme steps", lines: []int64{0, 1, 2}, steps: []int64{math.MaxInt64, 0, math.MaxInt64}, values: []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64}},
		{name: "huge line gaps", lines: []int64{0, 1 << 40, 1<<62 + 5}, steps: []int64{0, 1, 2}, values: []float64{math.Inf(1), math.Inf(-1), 3}},
		{name: "NaN is a NULL value", lines: []int64{1, 2, 3}, steps: []int64{1, 2, 3}, values: []float64{1, math.NaN(), 3},
			wantLines: []int64{1, 3}, wantSteps: []int64{1, 3}, wantValues: []float64{1, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.DecodeBlock(store.EncodeBlock(tc.lines, tc.steps, tc.values))
			if err != nil {
				t.Fatal(err)
			}
			want := store.Series{Lines: tc.lines, Steps: tc.steps, Values: tc.values}
			if tc.wantLines != nil {
				want.Lines = tc.wantLines
			}
			if tc.wantSteps != nil {
				want.Steps = tc.wantSteps
			}
			if tc.wantValues != nil {
				want.Values = tc.wantValues
			}
			if !sameSeries(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecodeBlockRejectsCorruptBlocks(t *testing.T) {
	good := store.EncodeBlock([]int64{1, 2, 3}, []int64{1, -1, 3}, []float64{1, 2, 3})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"other version", append([]byte{2}, good[1:]...)},
		{"zero values", []byte{1, 0, 0}},
		{"too many values", []byte{1, 0xff, 0xff, 0x7f, 0}},
		{"bad flags", append(append([]byte{}, good[:2]...), append([]byte{7}, good[3:]...)...)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"lines do not increase", store.EncodeBlock([]int64{5, 5}, []int64{0, 0}, []float64{1, 2})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if se, err := store.DecodeBlock(tc.b); err == nil {
				t.Errorf("got %+v, want an error", se)
			}
		})
	}
}

func FuzzDecodeBlock(f *testing.F) {
	f.Add(store.EncodeBlock([]int64{1, 2, 3}, []int64{1, -1, 3}, []float64{1, 2, 3}))
	f.Add(store.EncodeBlock([]int64{0}, []int64{-1}, []float64{math.NaN()}))
	f.Add([]byte{1, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		se, err := store.DecodeBlock(b)
		if err != nil {
			return
		}
		if len(se.Lines) != len(se.Steps) || len(se.Lines) != len(se.Values) {
			t.Fatalf("ragged series %+v", se)
		}
		for i := 1; i < len(se.Lines); i++ {
			if se.Lines[i] <= se.Lines[i-1] {
				t.Fatalf("lines not increasing: %v", se.Lines)
			}
		}
		// What decoded encodes back to a block that decodes the same.
		again, err := store.DecodeBlock(store.EncodeBlock(se.Lines, se.Steps, se.Values))
		if len(se.Lines) > 0 && (err != nil || !sameSeries(again, se)) {
			t.Fatalf("re-encoded %+v: got %+v, %v", se, again, err)
		}
	})
}

// sameSeries compares series bit for bit (so -0 differs from 0), nil and empty alike.
func sameSeries(a, b store.Series) bool {
	if len(a.Lines) != len(b.Lines) || len(a.Steps) != len(b.Steps) || len(a.Values) != len(b.Values) {
		return false
	}
	for i := range a.Lines {
		if a.Lines[i] != b.Lines[i] || a.Steps[i] != b.Steps[i] || math.Float64bits(a.Values[i]) != math.Float64bits(b.Values[i]) {
			return false
		}
	}
	return true
}

// randomHistory makes n history lines (line i's content fixed, as a client resends it): a few keys each,
// some nested, values that tie, NaN and ±Infinity literals, -0, steps missing, fractional, negative,
// jumping back and repeating.
func randomHistory(rng *rand.Rand, n int) []string {
	keys := []string{"loss", "acc", "lr", "nest.a", "nest.b"}
	out := make([]string, n)
	for i := range out {
		var parts []string
		switch rng.IntN(10) {
		case 0: // no step
		case 1:
			parts = append(parts, fmt.Sprintf(`"_step":%d.5`, i))
		case 2:
			parts = append(parts, fmt.Sprintf(`"_step":%d`, -rng.IntN(100)))
		case 3:
			parts = append(parts, fmt.Sprintf(`"_step":%d`, rng.IntN(1<<20)))
		default:
			parts = append(parts, fmt.Sprintf(`"_step":%d`, i))
		}
		nest := []string{}
		for _, k := range keys {
			if rng.IntN(4) == 0 {
				continue // a key missing from this row
			}
			var v string
			switch rng.IntN(12) {
			case 0:
				v = "NaN"
			case 1:
				v = "Infinity"
			case 2:
				v = "-Infinity"
			case 3:
				v = "-0"
			case 4:
				v = `"text"`
			case 5, 6, 7:
				v = strconv.Itoa(rng.IntN(3)) // ties
			default:
				v = strconv.FormatFloat(rng.NormFloat64()*1e3, 'g', -1, 64)
			}
			if name, ok := strings.CutPrefix(k, "nest."); ok {
				nest = append(nest, fmt.Sprintf(`%q:%s`, name, v))
			} else {
				parts = append(parts, fmt.Sprintf(`%q:%s`, k, v))
			}
		}
		if len(nest) > 0 {
			parts = append(parts, `"nest":{`+strings.Join(nest, ",")+`}`)
		}
		if rng.IntN(20) == 0 {
			parts = append(parts, `"img":{"_type":"image-file","width":3}`)
		}
		out[i] = "{" + strings.Join(parts, ",") + "}"
	}
	return out
}

var testKeys = []string{"loss", "acc", "lr", "nest.a", "nest.b", "missing", "img.width"}

// compareReads checks every read of the new path on got against the read before blocks (SQL over rows)
// on ref, which holds the same data unpacked.
func compareReads(t *testing.T, rng *rand.Rand, got, ref *store.Store, k store.RunKey, when string) {
	t.Helper()
	ctx := context.Background()
	gr, err := got.Run(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := ref.Run(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if gr.HistoryLines != rr.HistoryLines {
		t.Fatalf("%s: %d history lines, want %d", when, gr.HistoryLines, rr.HistoryLines)
	}
	for _, key := range testKeys {
		g, err := got.Metric(ctx, gr.ID, key)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.MetricRows(ctx, rr.ID, key)
		if err != nil {
			t.Fatal(err)
		}
		if !sameSeries(g, want) || (g.Lines == nil) != (want.Lines == nil) {
			t.Fatalf("%s: Metric(%s) = %d values %v..., want %d values %v...", when, key, len(g.Lines), head(g), len(want.Lines), head(want))
		}
		if key == "loss" && len(want.Lines) == 0 {
			t.Fatalf("%s: no loss values at all: the test data is wrong", when)
		}
		bks := []struct {
			lines   int64
			buckets int
		}{{rr.HistoryLines, 1}, {rr.HistoryLines, 30}, {7, 2}, {1 << 40, 1 << 62}, {rr.HistoryLines, 0}}
		rng.Shuffle(len(bks), func(i, j int) { bks[i], bks[j] = bks[j], bks[i] })
		for _, bk := range bks[:2] { // two of them each time: the SQL reference is slow under -race
			g, err := got.MetricBuckets(ctx, gr.ID, key, bk.lines, bk.buckets)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.MetricBucketsRows(ctx, rr.ID, key, bk.lines, bk.buckets)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSeries(g, want) {
				t.Fatalf("%s: MetricBuckets(%s, %d, %d) = %+v, want %+v", when, key, bk.lines, bk.buckets, g, want)
			}
		}
		at := []int64{-1, rr.HistoryLines + 5}
		for range 1 + rng.IntN(40) {
			at = append(at, rng.Int64N(rr.HistoryLines+1))
		}
		at = append(at, at[len(at)-1]) // a line asked twice
		g, err = got.MetricAt(ctx, gr.ID, key, at)
		if err != nil {
			t.Fatal(err)
		}
		want, err = ref.MetricAtRows(ctx, rr.ID, key, at)
		if err != nil {
			t.Fatal(err)
		}
		if !sameSeries(g, want) {
			t.Fatalf("%s: MetricAt(%s, %v) = %+v, want %+v", when, key, at, g, want)
		}
	}
}

func head(se store.Series) string {
	n := min(len(se.Lines), 4)
	return fmt.Sprintf("lines %v steps %v values %v", se.Lines[:n], se.Steps[:n], se.Values[:n])
}

// TestMetricMatchesRows streams the same random requests (chunks at random offsets, out of order,
// overlapping and resent; appends; a finish and a resume) into a store that packs (tiny blocks, so that
// there are many) and one that does not, and checks that every metric read of the first equals the read
// before blocks on the second: at each stage, after a restart and after the run finishes.
func TestMetricMatchesRows(t *testing.T) {
	for _, block := range []int{3, 40} {
		t.Run(fmt.Sprintf("block%d", block), func(t *testing.T) {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(uint64(block), 7))
			dir := t.TempDir()
			got := openTuned(t, filepath.Join(dir, "got.db"), block, false, 0)
			ref := openTuned(t, filepath.Join(dir, "ref.db"), 0, true, 0)
			defer func() { got.Close(ctx); ref.Close(ctx) }()
			const n = 600
			hist := randomHistory(rng, n)
			k := store.RunKey{Entity: "e", Project: "p", Name: "r"}
			send := func(u store.StreamUpdate) {
				t.Helper()
				for _, s := range []*store.Store{got, ref} {
					if _, err := s.Stream(ctx, k, u); err != nil {
						t.Fatal(err)
					}
				}
			}
			chunk := func(off, l int) store.StreamUpdate {
				l = min(l, n-off)
				return store.StreamUpdate{History: &store.Chunk{Offset: int64(off), Lines: hist[off : off+l]}}
			}
			// The first half in order, with the last request of every few resent.
			for off := 0; off < n/2; {
				l := 1 + rng.IntN(60)
				send(chunk(off, l))
				if rng.IntN(4) == 0 {
					send(chunk(off, l))
				}
				off += l
			}
			compareReads(t, rng, got, ref, k, "in order")
			// The second half at random offsets: gaps first, filled later, overlapping.
			for range 30 {
				off := n/2 + rng.IntN(n/2)
				send(chunk(off, 1+rng.IntN(20)))
			}
			compareReads(t, rng, got, ref, k, "out of order")
			if err := got.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got = openTuned(t, filepath.Join(dir, "got.db"), block, false, 0)
			compareReads(t, rng, got, ref, k, "after a restart")
			for off := n / 2; off < n; off += 100 {
				send(chunk(off, 100)) // every gap filled
			}
			send(store.StreamUpdate{Complete: true})
			compareReads(t, rng, got, ref, k, "finished")
			if rows, _, err := got.Layout(ctx); err != nil || rows != 0 {
				t.Errorf("finished: %d metric rows left unpacked (%v), want 0", rows, err)
			}
			// A resumed run appends more lines (negative offset: after the last).
			send(store.StreamUpdate{History: &store.Chunk{Offset: -1, Lines: randomHistory(rng, 100)}})
			compareReads(t, rng, got, ref, k, "resumed")
			send(store.StreamUpdate{Complete: true})
			compareReads(t, rng, got, ref, k, "finished again")
		})
	}
}

// TestPackingKeepsFewRows checks that a live run's rows are packed as they come: at most about two blocks
// of rows a key stay unpacked, and none once the run finished.
func TestPackingKeepsFewRows(t *testing.T) {
	for _, end := range []string{"file_stream complete", "UpsertRun state"} {
		t.Run(end, func(t *testing.T) { testPackingKeepsFewRows(t, end) })
	}
}

// testPackingKeepsFewRows streams 1,000 rows, checks that few stay unpacked while the run runs, ends the
// run the way end says, and checks that nothing stays unpacked and the values read back.
func testPackingKeepsFewRows(t *testing.T, end string) {
	ctx := context.Background()
	const block = 16
	s := openTuned(t, filepath.Join(t.TempDir(), "m.db"), block, false, 0)
	defer s.Close(ctx)
	k := store.RunKey{Entity: "e", Project: "p", Name: "r"}
	const n = 1000
	for off := 0; off < n; off += 10 {
		lines := make([]string, 10)
		for i := range lines {
			lines[i] = fmt.Sprintf(`{"_step":%d,"a":%d,"b":%d}`, off+i, off+i, -(off + i))
		}
		if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: int64(off), Lines: lines}}); err != nil {
			t.Fatal(err)
		}
	}
	rows, blocks, err := s.Layout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rows >= 2*2*block || blocks < 2*(n/block-2) {
		t.Errorf("live: %d rows, %d blocks; want under %d rows and at least %d blocks", rows, blocks, 4*block, 2*(n/block-2))
	}
	if end == "file_stream complete" {
		if _, err := s.Stream(ctx, k, store.StreamUpdate{Complete: true}); err != nil {
			t.Fatal(err)
		}
	} else {
		state := store.StateFinished
		if _, _, err := s.UpsertRun(ctx, store.Upsert{RunKey: k, State: &state}); err != nil {
			t.Fatal(err)
		}
	}
	if rows, _, err := s.Layout(ctx); err != nil || rows != 0 {
		t.Errorf("finished: %d rows (%v), want 0", rows, err)
	}
	run, _ := s.Run(ctx, k)
	se, err := s.Metric(ctx, run.ID, "b")
	if err != nil || len(se.Values) != n {
		t.Fatalf("got %d values, %v; want %d", len(se.Values), err, n)
	}
	for i := range n {
		if se.Lines[i] != int64(i) || se.Steps[i] != int64(i) || se.Values[i] != float64(-i) {
			t.Fatalf("value %d: line %d step %d value %g", i, se.Lines[i], se.Steps[i], se.Values[i])
		}
	}
}

// TestMigrationPacksOldDatabase writes a database at schema version 2 (metric rows only, as before
// blocks), then opens it with the current schema: migration 3 packs every series, and every read gives
// what it gave before.
func TestMigrationPacksOldDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := openTuned(t, path, 0, true, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	type read struct {
		key               string
		full, buckets, at store.Series
	}
	var want []read
	var ids []int64
	for r := range 3 {
		k := store.RunKey{Entity: "e", Project: "p", Name: fmt.Sprintf("r%d", r)}
		hist := randomHistory(rng, 700+r*300)
		for off := 0; off < len(hist); off += 97 {
			if _, err := old.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: int64(off), Lines: hist[off:min(off+97, len(hist))]}}); err != nil {
				t.Fatal(err)
			}
		}
		if r == 0 {
			if _, err := old.Stream(ctx, k, store.StreamUpdate{Complete: true}); err != nil {
				t.Fatal(err)
			}
		}
		run, err := old.Run(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.ID)
		for _, key := range testKeys {
			rd := read{key: key}
			rd.full, _ = old.MetricRows(ctx, run.ID, key)
			rd.buckets, _ = old.MetricBucketsRows(ctx, run.ID, key, run.HistoryLines, 50)
			rd.at, err = old.MetricAtRows(ctx, run.ID, key, []int64{0, 5, 99, 500, 501})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, rd)
		}
	}
	if rows, _, err := old.Layout(ctx); err != nil || rows == 0 {
		t.Fatalf("old database: %d metric rows, %v", rows, err)
	}
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}

	s := open(t, path)
	defer s.Close(ctx)
	rows, blocks, err := s.Layout(ctx)
	if err != nil || rows != 0 || blocks == 0 {
		t.Fatalf("migrated: %d rows, %d blocks, %v; want every row packed", rows, blocks, err)
	}
	for i, rd := range want {
		id := ids[i/len(testKeys)]
		full, err := s.Metric(ctx, id, rd.key)
		if err != nil || !sameSeries(full, rd.full) {
			t.Errorf("run %d %s: Metric differs after migration (%v): %d values, want %d", id, rd.key, err, len(full.Lines), len(rd.full.Lines))
		}
		run, _ := s.Run(ctx, store.RunKey{Entity: "e", Project: "p", Name: fmt.Sprintf("r%d", i/len(testKeys))})
		b, err := s.MetricBuckets(ctx, id, rd.key, run.HistoryLines, 50)
		if err != nil || !sameSeries(b, rd.buckets) {
			t.Errorf("run %d %s: MetricBuckets differs after migration (%v)", id, rd.key, err)
		}
		at, err := s.MetricAt(ctx, id, rd.key, []int64{0, 5, 99, 500, 501})
		if err != nil || !sameSeries(at, rd.at) {
			t.Errorf("run %d %s: MetricAt differs after migration (%v)", id, rd.key, err)
		}
	}
}

// TestReadWhileWriting reads a run's metric over and over while it is written (and packed, in tiny
// blocks): every read is in line order, holds exactly the right values, and has at least every value
// acknowledged before it began.
func TestReadWhileWriting(t *testing.T) {
	ctx := context.Background()
	s := openTuned(t, filepath.Join(t.TempDir(), "m.db"), 5, false, 0)
	defer s.Close(ctx)
	k := store.RunKey{Entity: "e", Project: "p", Name: "r"}
	if _, err := s.Stream(ctx, k, store.StreamUpdate{}); err != nil {
		t.Fatal(err)
	}
	run, err := s.Run(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1200
	var mu sync.Mutex
	acked := 0
	done := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				mu.Lock()
				before := acked
				mu.Unlock()
				se, err := s.Metric(ctx, run.ID, "v")
				if err == nil && len(se.Lines) < before {
					err = fmt.Errorf("read %d values, %d were acknowledged before", len(se.Lines), before)
				}
				for i := range se.Lines {
					if err == nil && (se.Lines[i] != int64(i) || se.Steps[i] != int64(i) || se.Values[i] != float64(i)/3) {
						err = fmt.Errorf("value %d of %d: line %d step %d value %g", i, len(se.Lines), se.Lines[i], se.Steps[i], se.Values[i])
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for off := 0; off < n; {
		l := min(1+rng.IntN(25), n-off)
		lines := make([]string, l)
		for i := range lines {
			lines[i] = fmt.Sprintf(`{"_step":%d,"v":%v}`, off+i, float64(off+i)/3)
		}
		if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: int64(off), Lines: lines}}); err != nil {
			t.Fatal(err)
		}
		off += l
		mu.Lock()
		acked = off
		mu.Unlock()
	}
	if _, err := s.Stream(ctx, k, store.StreamUpdate{Complete: true}); err != nil {
		t.Fatal(err)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	se, err := s.Metric(ctx, run.ID, "v")
	if err != nil || len(se.Values) != n {
		t.Fatalf("at the end: %d values, %v; want %d", len(se.Values), err, n)
	}
}

// TestCorruptBlockIsAnError checks that a damaged block makes the read fail with a clear error instead of
// returning wrong values.
func TestCorruptBlockIsAnError(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s := openTuned(t, path, 4, false, 0)
	k := store.RunKey{Entity: "e", Project: "p", Name: "r"}
	lines := []string{`{"a":1}`, `{"a":2}`, `{"a":3}`, `{"a":4}`, `{"a":5}`}
	if _, err := s.Stream(ctx, k, store.StreamUpdate{History: &store.Chunk{Offset: 0, Lines: lines}}); err != nil {
		t.Fatal(err)
	}
	run, _ := s.Run(ctx, k)
	if err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE metric_blocks SET data = x'0102'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Metric(ctx, run.ID, "a")
	if err == nil || !strings.Contains(err.Error(), "corrupt metric block") || !strings.Contains(err.Error(), "line 0") {
		t.Errorf("got %v, want a corrupt-block error naming the block's line", err)
	}
	if _, err := s.MetricBuckets(ctx, run.ID, "a", 5, 2); err == nil {
		t.Errorf("MetricBuckets: got no error, want one")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
