package main

import (
	"strings"
	"testing"

	"github.com/mami-lab/mami/runs/wandb"
)

// TestDescribeSyncSkipped: mami sync's line says when records were skipped as too large for the server,
// whether or not this sync sent anything.
func TestDescribeSyncSkipped(t *testing.T) {
	skipped := []wandb.SkippedRecord{{}, {}}
	for _, tc := range []struct {
		name string
		r    wandb.SyncReport
		want string
	}{
		{"up to date", wandb.SyncReport{Dir: "d", UpToDate: true, Skipped: skipped}, "d: up to date (); 2 records too large"},
		{"sent", wandb.SyncReport{Dir: "d", History: 3, Completed: true, Skipped: skipped}, "2 records too large for the server were skipped"},
		{"none", wandb.SyncReport{Dir: "d", History: 3, Completed: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := describeSync(tc.r)
			want := tc.want
			if want == "" {
				if strings.Contains(got, "too large") {
					t.Errorf("describeSync = %q, mentions skipped records there are none of", got)
				}
				return
			}
			if !strings.Contains(got, want) {
				t.Errorf("describeSync = %q, want it to contain %q", got, want)
			}
		})
	}
}
