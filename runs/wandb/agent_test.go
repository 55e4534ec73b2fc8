package wandb_test

import (
	"reflect"
	"testing"

	"github.com/mami-lab/mami/runs/wandb"
)

func TestParseAgentCommands(t *testing.T) {
	cases := []struct {
		name, in string
		want     []wandb.AgentCommand
		wantErr  bool
	}{
		{"empty list", `[]`, []wandb.AgentCommand{}, false},
		{"run, as W&B sends it", `[{"type": "run", "run_id": "r1", "program": "train.py", "args": {"train.lr": {"value": 0.01}, "model.fusion": {"value": "late"}}}]`,
			[]wandb.AgentCommand{{Type: "run", RunID: "r1", Program: "train.py", Args: map[string]any{"train.lr": 0.01, "model.fusion": "late"}}}, false},
		{"plain arg values", `[{"type": "run", "run_id": "r1", "args": {"train.epochs": 3}}]`,
			[]wandb.AgentCommand{{Type: "run", RunID: "r1", Args: map[string]any{"train.epochs": 3.0}}}, false},
		{"stop and exit", `[{"type": "stop", "run_id": "r1"}, {"type": "exit"}]`,
			[]wandb.AgentCommand{{Type: "stop", RunID: "r1"}, {Type: "exit"}}, false},
		{"one object", `{"type": "exit"}`, []wandb.AgentCommand{{Type: "exit"}}, false},
		{"no type", `[{"run_id": "r1"}]`, nil, true},
		{"not JSON", `run r1`, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := wandb.ParseAgentCommands(c.in)
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v, want error %v", err, c.wantErr)
			}
			if !c.wantErr && !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func FuzzParseAgentCommands(f *testing.F) {
	f.Add(`[{"type": "run", "run_id": "r1", "args": {"train.lr": {"value": 0.01}}}]`)
	f.Add(`[{"type": "stop", "run_id": "r1"}]`)
	f.Add(`{"type": "exit"}`)
	f.Add(`[{"type": "run", "args": {"a": {"value": null}, "b": [1, {"value": 2}]}}]`)
	f.Fuzz(func(t *testing.T, s string) {
		cmds, err := wandb.ParseAgentCommands(s)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if c.Type == "" {
				t.Errorf("%q: command without a type accepted", s)
			}
		}
	})
}
