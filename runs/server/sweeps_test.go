package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mami-lab/mami/experiments/sweep"
	"github.com/mami-lab/mami/runs/server"
	"github.com/mami-lab/mami/runs/server/servertest"
	"github.com/mami-lab/mami/runs/server/store"
	"github.com/mami-lab/mami/runs/wandb"
)

// gql sends one GraphQL operation and returns data (failing the test on a transport error).
func sgql(t *testing.T, srv *servertest.Server, query string, vars map[string]any) (map[string]any, []string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return post(t, srv, "/graphql", b)
}

func post(t *testing.T, srv *servertest.Server, path string, body []byte) (map[string]any, []string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	srv.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: status %d: %s", path, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("POST %s: content type %q", path, ct)
	}
	var ans struct {
		Data   map[string]any `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatalf("POST %s: answer is not JSON: %v: %s", path, err, raw)
	}
	var errs []string
	for _, e := range ans.Errors {
		errs = append(errs, e.Message)
	}
	if ans.Data == nil && path != "/graphql" {
		_ = json.Unmarshal(raw, &ans.Data)
	}
	return ans.Data, errs
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

const (
	upsertSweepQ = `mutation UpsertSweep($config: String, $projectName: String, $id: ID, $state: String) {
	upsertSweep(input: {config: $config, projectName: $projectName, id: $id, state: $state}) {
		sweep { name project { id name entity { id name } } } configValidationWarnings } }`
	createAgentQ = `mutation CreateAgent($host: String!, $sweep: String!) {
	createAgent(input: {host: $host, sweep: $sweep}) { agent { id } } }`
	heartbeatQ = `mutation Heartbeat($id: ID!, $metrics: JSONString, $runState: JSONString) {
	agentHeartbeat(input: {id: $id, metrics: $metrics, runState: $runState}) { agent { id } commands } }`
)

func createSweep(t *testing.T, srv *servertest.Server, yaml string) string {
	t.Helper()
	data, errs := sgql(t, srv, upsertSweepQ, map[string]any{"config": yaml, "projectName": "p"})
	if len(errs) > 0 {
		t.Fatalf("UpsertSweep: %v", errs)
	}
	id, _ := dig(data, "upsertSweep", "sweep", "name").(string)
	if id == "" {
		t.Fatalf("UpsertSweep: no sweep name in %v", data)
	}
	return id
}

func createAgent(t *testing.T, srv *servertest.Server, sweepID string) string {
	t.Helper()
	data, errs := sgql(t, srv, createAgentQ, map[string]any{"host": "test", "sweep": sweepID})
	if len(errs) > 0 {
		t.Fatalf("CreateAgent: %v", errs)
	}
	id, _ := dig(data, "createAgent", "agent", "id").(string)
	if id == "" {
		t.Fatalf("CreateAgent: no agent id in %v", data)
	}
	return id
}

func beat(t *testing.T, srv *servertest.Server, agent string, running ...string) []wandb.AgentCommand {
	t.Helper()
	rs := map[string]bool{}
	for _, r := range running {
		rs[r] = true
	}
	b, _ := json.Marshal(rs)
	data, errs := sgql(t, srv, heartbeatQ, map[string]any{"id": agent, "metrics": "{}", "runState": string(b)})
	if len(errs) > 0 {
		t.Fatalf("Heartbeat: %v", errs)
	}
	s, ok := dig(data, "agentHeartbeat", "commands").(string)
	if !ok {
		t.Fatalf("Heartbeat: commands is not a string: %#v", dig(data, "agentHeartbeat"))
	}
	cmds, err := wandb.ParseAgentCommands(s)
	if err != nil {
		t.Fatal(err)
	}
	return cmds
}

const upsertBucketQ = `mutation UpsertBucket($name: String, $project: String, $sweep: String, $config: JSONString) {
	upsertBucket(input: {name: $name, modelName: $project, sweep: $sweep, config: $config}) { bucket { id name sweepName } inserted } }`

// fakeRun streams a trial the way a W&B client does: UpsertBucket carrying the sweep, one history row per
// epoch with val/f1_macro, then complete. It stops early (exit code 130) when ctx ends.
func fakeRun(ctx context.Context, t *testing.T, srv *servertest.Server, sweepID, runID string, curve []float64, pause time.Duration) (stopped bool) {
	t.Helper()
	if _, errs := sgql(t, srv, upsertBucketQ, map[string]any{"name": runID, "project": "p", "sweep": sweepID, "config": "{}"}); len(errs) > 0 {
		t.Errorf("UpsertBucket %s: %v", runID, errs)
		return false
	}
	stream := func(body map[string]any) {
		b, _ := json.Marshal(body)
		post(t, srv, "/files/local/p/"+runID+"/file_stream", b)
	}
	exit := 0
	for i, v := range curve {
		row, _ := json.Marshal(map[string]any{"_step": i + 1, "epoch": i + 1, "val/f1_macro": v})
		stream(map[string]any{"files": map[string]any{"wandb-history.jsonl": map[string]any{"offset": i, "content": []string{string(row)}}}})
		select {
		case <-ctx.Done():
			stopped, exit = true, 130
		case <-time.After(pause):
		}
		if stopped {
			break
		}
	}
	summary, _ := json.Marshal(map[string]any{"val/f1_macro": curve[len(curve)-1]})
	stream(map[string]any{"files": map[string]any{"wandb-summary.json": map[string]any{"offset": 0, "content": []string{string(summary)}}},
		"complete": true, "exitcode": exit})
	return stopped
}

func TestSweepTranscriptReplay(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	if _, err := srv.EnableSweeps(context.Background(), server.SweepOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := readTranscript(t, "sweep-transcript.jsonl")
	byOp := map[string]transcriptLine{}
	for _, l := range lines {
		if _, ok := byOp[l.Op]; !ok && l.Op != "" {
			byOp[l.Op] = l
		}
	}
	send := func(op string, edit func(vars map[string]any)) (map[string]any, []string) {
		l, ok := byOp[op]
		if !ok {
			t.Fatalf("transcript has no %s", op)
		}
		var req map[string]any
		if err := json.Unmarshal(l.Body, &req); err != nil {
			t.Fatal(err)
		}
		edit(req["variables"].(map[string]any))
		b, _ := json.Marshal(req)
		return post(t, srv, "/graphql", b)
	}
	// As recorded: the parameters are not mami config keys, and the error names them.
	_, errs := send("UpsertSweep", func(map[string]any) {})
	if len(errs) != 1 || !strings.Contains(errs[0], "parameters.fusion") || !strings.Contains(errs[0], "parameters.lr") {
		t.Fatalf("UpsertSweep with unknown keys: errors %q, want one naming parameters.fusion and parameters.lr", errs)
	}
	// The same request with mami keys.
	data, errs := send("UpsertSweep", func(v map[string]any) {
		v["config"] = "method: random\nmetric: {goal: maximize, name: val/f1_macro}\nparameters:\n  model.fusion: {values: [concat, late]}\n  train.lr: {values: [0.01, 0.001]}\n"
	})
	if len(errs) > 0 {
		t.Fatalf("UpsertSweep: %v", errs)
	}
	sweepID, _ := dig(data, "upsertSweep", "sweep", "name").(string)
	if sweepID == "" || dig(data, "upsertSweep", "sweep", "project", "name") != "p" ||
		dig(data, "upsertSweep", "sweep", "project", "entity", "name") != "local" {
		t.Fatalf("UpsertSweep answer %v", data)
	}
	if w, ok := dig(data, "upsertSweep", "configValidationWarnings").([]any); !ok || len(w) != 0 {
		t.Errorf("configValidationWarnings = %#v, want []", dig(data, "upsertSweep", "configValidationWarnings"))
	}
	data, errs = send("CreateAgent", func(v map[string]any) { v["sweep"] = sweepID })
	agentID, _ := dig(data, "createAgent", "agent", "id").(string)
	if len(errs) > 0 || agentID == "" {
		t.Fatalf("CreateAgent: %v %v", data, errs)
	}
	data, errs = send("Heartbeat", func(v map[string]any) { v["id"] = agentID })
	if len(errs) > 0 || dig(data, "agentHeartbeat", "agent", "id") != agentID {
		t.Fatalf("Heartbeat: %v %v", data, errs)
	}
	raw, _ := dig(data, "agentHeartbeat", "commands").(string)
	var cmds []map[string]any
	if err := json.Unmarshal([]byte(raw), &cmds); err != nil || len(cmds) != 1 {
		t.Fatalf("commands %q: want a JSON list of one command (%v)", raw, err)
	}
	runID, _ := cmds[0]["run_id"].(string)
	if cmds[0]["type"] != "run" || runID != sweep.TrialRunID(sweepID, 0) {
		t.Fatalf("command %v, want run %s", cmds[0], sweep.TrialRunID(sweepID, 0))
	}
	for _, k := range []string{"model.fusion", "train.lr"} {
		if _, ok := dig(cmds[0]["args"], k, "value").(any); !ok || dig(cmds[0]["args"], k, "value") == nil {
			t.Errorf("args %v: no {value} for %s", cmds[0]["args"], k)
		}
	}
	// The run's own UpsertBucket carries the sweep.
	data, errs = send("UpsertBucket", func(v map[string]any) { v["name"], v["sweep"] = runID, sweepID })
	if len(errs) > 0 || dig(data, "upsertBucket", "bucket", "sweepName") != sweepID {
		t.Fatalf("UpsertBucket: %v %v", data, errs)
	}
	// While it runs, the agent gets nothing more.
	if cmds := beat(t, srv, agentID, runID); len(cmds) != 0 {
		t.Errorf("heartbeat while running: commands %v, want none", cmds)
	}
	if _, errs := sgql(t, srv, heartbeatQ, map[string]any{"id": "agent-nobody", "runState": "{}"}); len(errs) == 0 {
		t.Error("heartbeat of an unknown agent: no error")
	}
	if _, errs := sgql(t, srv, createAgentQ, map[string]any{"host": "h", "sweep": "nosuch"}); len(errs) == 0 {
		t.Error("CreateAgent for an unknown sweep: no error")
	}
}

const gridSweep = `method: grid
metric: {name: val/f1_macro, goal: maximize}
parameters:
  model.fusion: {values: [concat, late]}
  train.lr: {values: [0.0001, 0.0003, 0.001, 0.003]}
`

func TestSweepTwoAgentsRunEveryTrialOnce(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	hosted, err := srv.EnableSweeps(context.Background(), server.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sweepID := createSweep(t, srv, gridSweep)
	var mu sync.Mutex
	runs := map[string]int{}
	byAgent := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		name := fmt.Sprintf("a%d", i)
		ag := &wandb.Agent{
			Settings: wandb.Settings{BaseURL: srv.URL, APIKey: srv.Key, Project: "p"},
			SweepID:  sweepID, Interval: 10 * time.Millisecond, Host: name,
			Run: func(ctx context.Context, cmd wandb.AgentCommand) error {
				mu.Lock()
				runs[cmd.RunID]++
				byAgent[name]++
				mu.Unlock()
				lr, _ := cmd.Args["train.lr"].(float64)
				fakeRun(ctx, t, srv, sweepID, cmd.RunID, []float64{0.5, 0.6 + lr}, 15*time.Millisecond)
				return nil
			},
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = ag.Serve(ctx) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("agent %d: %v", i, err)
		}
	}
	if len(runs) != 8 {
		t.Errorf("%d distinct runs, want 8: %v", len(runs), runs)
	}
	for k := range 8 {
		if n := runs[sweep.TrialRunID(sweepID, k)]; n != 1 {
			t.Errorf("trial %d ran %d times, want 1", k, n)
		}
	}
	if byAgent["a0"] == 0 || byAgent["a1"] == 0 {
		t.Errorf("runs per agent %v: want both agents to take trials", byAgent)
	}
	st, _ := hosted.State(sweepID)
	done, running, left := st.Counts()
	if done != 8 || running != 0 || left != 0 {
		t.Errorf("counts done %d running %d left %d, want 8 0 0", done, running, left)
	}
	for _, tr := range st.Trials {
		if tr.State != sweep.TrialFinished || tr.Metric == nil {
			t.Errorf("trial %d: state %s metric %v, want finished with a metric", tr.Index, tr.State, tr.Metric)
		}
	}
	if best := st.Best(sweep.Metric{Name: "val/f1_macro", Goal: sweep.GoalMaximize}); best == nil || best.Params["train.lr"] != 0.003 {
		t.Errorf("best trial %+v, want one with train.lr 0.003", best)
	}
}

func TestSweepHyperbandStopReachesRunningTrial(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	hosted, err := srv.EnableSweeps(context.Background(), server.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sweepID := createSweep(t, srv, `method: grid
metric: {name: val/f1_macro, goal: maximize}
early_terminate: {type: hyperband, min_iter: 1, eta: 2}
parameters:
  train.lr: {values: [0.001, 0.002, 0.5]}
`)
	stopped := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ag := &wandb.Agent{
		Settings: wandb.Settings{BaseURL: srv.URL, APIKey: srv.Key, Project: "p"},
		SweepID:  sweepID, Interval: 10 * time.Millisecond,
		Run: func(ctx context.Context, cmd wandb.AgentCommand) error {
			curve := []float64{0.8 + cmd.Args["train.lr"].(float64), 0.85, 0.9}
			pause := 5 * time.Millisecond
			if cmd.Args["train.lr"] == 0.5 { // diverges: far worse at the first rung, then waits to be stopped
				curve, pause = []float64{0.1, 0.1, 0.1}, 10*time.Second
			}
			stopped[cmd.RunID] = fakeRun(ctx, t, srv, sweepID, cmd.RunID, curve, pause)
			return nil
		},
	}
	start := time.Now()
	if err := ag.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 9*time.Second {
		t.Errorf("the diverging trial was not stopped early (took %s)", time.Since(start))
	}
	bad := sweep.TrialRunID(sweepID, 2)
	if !stopped[bad] || stopped[sweep.TrialRunID(sweepID, 0)] || stopped[sweep.TrialRunID(sweepID, 1)] {
		t.Errorf("stopped %v, want only %s", stopped, bad)
	}
	st, _ := hosted.State(sweepID)
	if st.Trials[0].State != sweep.TrialFinished || st.Trials[1].State != sweep.TrialFinished ||
		st.Trials[2].State != sweep.TrialEarlyTerminated || st.Trials[2].StoppedAt != 1 {
		t.Errorf("trial states %s, %s, %s (stopped at %d), want finished, finished, early_terminated at 1",
			st.Trials[0].State, st.Trials[1].State, st.Trials[2].State, st.Trials[2].StoppedAt)
	}
	run, err := srv.Store().Run(context.Background(), storeKey("p", bad))
	if err != nil || run.State != "stopped" {
		t.Errorf("run %s: state %v (%v), want stopped", bad, run, err)
	}
}

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestSweepRequeuesTrialOfSilentAgent(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := servertest.Start(t, server.Config{Clock: clk.now})
	if _, err := srv.EnableSweeps(context.Background(), server.SweepOptions{AgentTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	sweepID := createSweep(t, srv, gridSweep)
	a, b := createAgent(t, srv, sweepID), createAgent(t, srv, sweepID)
	cmds := beat(t, srv, a)
	if len(cmds) != 1 || cmds[0].Type != "run" || cmds[0].RunID != sweep.TrialRunID(sweepID, 0) {
		t.Fatalf("agent a: %v, want run of trial 0", cmds)
	}
	first := cmds[0]
	clk.add(30 * time.Second)
	if cmds := beat(t, srv, b); len(cmds) != 1 || cmds[0].RunID != sweep.TrialRunID(sweepID, 1) {
		t.Fatalf("agent b before the timeout: %v, want trial 1", cmds)
	}
	clk.add(45 * time.Second) // a silent for 75 s; b for 45 s
	if cmds := beat(t, srv, b, sweep.TrialRunID(sweepID, 1)); len(cmds) != 0 {
		t.Fatalf("agent b busy: %v, want nothing", cmds)
	}
	c := createAgent(t, srv, sweepID)
	cmds = beat(t, srv, c)
	want := sweep.TrialRunID(sweepID, 0) + "-r2"
	if len(cmds) != 1 || cmds[0].Type != "run" || cmds[0].RunID != want {
		t.Fatalf("agent c after a went silent: %v, want run %s (trial 0 again)", cmds, want)
	}
	if fmt.Sprint(cmds[0].Args) != fmt.Sprint(first.Args) {
		t.Errorf("requeued args %v, want %v", cmds[0].Args, first.Args)
	}
	// a comes back still running its old run: it is told to stop it.
	cmds = beat(t, srv, a, first.RunID)
	if len(cmds) != 1 || cmds[0].Type != "stop" || cmds[0].RunID != first.RunID {
		t.Errorf("agent a back: %v, want stop %s", cmds, first.RunID)
	}
}

func TestSweepSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv1 := servertest.Start(t, server.Config{DataDir: dir})
	if _, err := srv1.EnableSweeps(context.Background(), server.SweepOptions{}); err != nil {
		t.Fatal(err)
	}
	sweepID := createSweep(t, srv1, gridSweep)
	a := createAgent(t, srv1, sweepID)
	cmds := beat(t, srv1, a)
	if len(cmds) != 1 || cmds[0].Type != "run" {
		t.Fatalf("agent a: %v", cmds)
	}
	held := cmds[0].RunID
	if err := srv1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv2 := servertest.Start(t, server.Config{DataDir: dir})
	hosted, err := srv2.EnableSweeps(context.Background(), server.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cmds := beat(t, srv2, a, held); len(cmds) != 0 {
		t.Errorf("agent a after restart: %v, want nothing (it keeps %s)", cmds, held)
	}
	b := createAgent(t, srv2, sweepID)
	cmds = beat(t, srv2, b)
	if len(cmds) != 1 || cmds[0].RunID != sweep.TrialRunID(sweepID, 1) {
		t.Errorf("agent b after restart: %v, want trial 1 (trial 0 is still a's)", cmds)
	}
	st, _ := hosted.State(sweepID)
	if st.Trials[0].State != sweep.TrialRunning || st.Trials[0].Attempts != 1 {
		t.Errorf("trial 0 after restart: %+v, want running, 1 attempt", st.Trials[0])
	}
	// a's run ends on the restarted server; a gets the next trial.
	fakeRun(context.Background(), t, srv2, sweepID, held, []float64{0.5, 0.7}, 0)
	if cmds := beat(t, srv2, a); len(cmds) != 1 || cmds[0].RunID != sweep.TrialRunID(sweepID, 2) {
		t.Errorf("agent a after its run ended: %v, want trial 2", cmds)
	}
	st, _ = hosted.State(sweepID)
	if tr := st.Trials[0]; tr.State != sweep.TrialFinished || tr.Metric == nil || float64(*tr.Metric) != 0.7 || len(tr.Curve) != 2 {
		t.Errorf("trial 0: %+v, want finished at 0.7 with its 2-epoch curve", tr)
	}
}

func storeKey(project, name string) store.RunKey {
	return store.RunKey{Entity: server.DefaultEntity, Project: project, Name: name}
}

func TestSweepStates(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	if _, err := srv.EnableSweeps(context.Background(), server.SweepOptions{}); err != nil {
		t.Fatal(err)
	}
	sweepID := createSweep(t, srv, gridSweep)
	setState := func(state string) {
		t.Helper()
		if _, errs := sgql(t, srv, upsertSweepQ, map[string]any{"id": sweepID, "state": state}); len(errs) > 0 {
			t.Fatalf("UpsertSweep state %s: %v", state, errs)
		}
	}
	a := createAgent(t, srv, sweepID)
	setState("PAUSED")
	if cmds := beat(t, srv, a); len(cmds) != 0 {
		t.Errorf("paused sweep: %v, want no commands", cmds)
	}
	setState("RUNNING")
	cmds := beat(t, srv, a)
	if len(cmds) != 1 || cmds[0].Type != "run" {
		t.Fatalf("resumed sweep: %v, want a run", cmds)
	}
	setState("CANCELED")
	if got := beat(t, srv, a, cmds[0].RunID); len(got) != 1 || got[0].Type != "stop" || got[0].RunID != cmds[0].RunID {
		t.Errorf("cancelled sweep, run going: %v, want stop %s", got, cmds[0].RunID)
	}
	if _, errs := sgql(t, srv, upsertSweepQ, map[string]any{"id": sweepID, "state": "SLEEPING"}); len(errs) == 0 {
		t.Error("unknown state accepted")
	}
}

func TestSweepRetriesRunThatDiedOnTheAgent(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	hosted, err := srv.EnableSweeps(context.Background(), server.SweepOptions{AgentTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sweepID := createSweep(t, srv, gridSweep)
	a := createAgent(t, srv, sweepID)
	first := beat(t, srv, a)
	if len(first) != 1 {
		t.Fatalf("agent a: %v", first)
	}
	// The run failed before it reached the server; the agent says so once with false.
	data, errs := sgql(t, srv, heartbeatQ, map[string]any{"id": a, "runState": `{"` + first[0].RunID + `": false}`})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	cmds, err := wandb.ParseAgentCommands(dig(data, "agentHeartbeat", "commands").(string))
	want := first[0].RunID + "-r2"
	if err != nil || len(cmds) != 1 || cmds[0].RunID != want {
		t.Fatalf("after the failure: %v (%v), want a retry as %s", cmds, err, want)
	}
	st, _ := hosted.State(sweepID)
	if tr := st.Trials[0]; tr.Failures != 1 || tr.State != sweep.TrialRunning || !strings.Contains(tr.Error, first[0].RunID) {
		t.Errorf("trial 0: %+v, want one failure naming the run, running again", tr)
	}
}
