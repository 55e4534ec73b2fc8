package server_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
)

func TestDownsample(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []float64
		n      int
		want   []int
	}{
		{"short kept whole", []float64{3, 1, 2}, 10, []int{0, 1, 2}},
		{"min and max per bucket", []float64{0, 5, -1, 2, 9, 3, 4, 1}, 4, []int{0, 1, 2, 4, 7}},
		{"spike survives", []float64{1, 1, 1, 1, 1, 100, 1, 1, 1, 1, 1, 1}, 4, []int{0, 5, 6, 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := server.Downsample(tc.values, tc.n)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Downsample(%v, %d) = %v, want %v", tc.values, tc.n, got, tc.want)
			}
		})
	}
}

// TestHistorySamples checks the min/max-bucket downsampling of a long run through the API.
func TestHistorySamples(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	const n = 2000
	var lines []string
	for i := range n {
		v := math.Sin(float64(i) / 50)
		switch i {
		case 777:
			v = -5 // a dip a plain stride would miss
		case 1234:
			v = 7
		}
		lines = append(lines, fmt.Sprintf(`{"_step":%d,"_runtime":%d.5,"loss":%g}`, i, i, v))
	}
	gql(t, srv, upsert, map[string]any{"name": "long", "project": "p"})
	stream(t, srv, "long", map[string]any{"files": map[string]any{"wandb-history.jsonl": map[string]any{"offset": 0, "content": lines}}})
	var rows []map[string]any
	srv.GetJSON(t, "/api/v1/runs/local/p/long/history?keys=loss,_runtime&samples=100", &rows)
	if len(rows) < 50 || len(rows) > 102 {
		t.Fatalf("got %d rows, want 50..102", len(rows))
	}
	var sawMin, sawMax bool
	last := -1.0
	for _, r := range rows {
		st, ok1 := r["_step"].(float64)
		rt, ok2 := r["_runtime"].(float64)
		loss, ok3 := r["loss"].(float64)
		if !ok1 || !ok2 || !ok3 || rt != st+0.5 || st <= last {
			t.Fatalf("bad row %v after step %v", r, last)
		}
		last = st
		sawMin = sawMin || loss == -5 && st == 777
		sawMax = sawMax || loss == 7 && st == 1234
	}
	if !sawMin || !sawMax {
		t.Errorf("downsampled rows lost the extremes (min kept %v, max kept %v)", sawMin, sawMax)
	}
	srv.GetJSON(t, "/api/v1/runs/local/p/long/history?keys=loss", &rows)
	if len(rows) != n {
		t.Errorf("without samples: got %d rows, want %d", len(rows), n)
	}
	var multi map[string][]map[string]any
	srv.GetJSON(t, "/api/v1/history?entity=local&project=p&runs=long,missing&keys=loss&samples=200", &multi)
	if len(multi["long"]) == 0 || len(multi["long"]) > 202 || multi["missing"] != nil {
		t.Errorf("multi-run history: got %d rows for long, %v for missing", len(multi["long"]), multi["missing"])
	}
	status, _ := do(t, srv, "GET", "/api/v1/runs/local/p/long/history?samples=1", nil, true)
	if status != 400 {
		t.Errorf("samples=1: got %d, want 400", status)
	}
}
