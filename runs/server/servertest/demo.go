package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
)

// RunSpec is a run to log through the W&B protocol.
type RunSpec struct {
	Project string
	ID      string
	Name    string // display name
	Group   string
	Config  map[string]any // plain values; sent in the Python client's {"k": {"value": v}} shape
	Rows    []map[string]any
	Summary map[string]any
	Output  []string          // console lines
	Files   map[string][]byte // uploaded through CreateRunFiles and PUT
	Finish  bool              // send complete with ExitCode
	Exit    int
}

// LogRun sends a run to the server the way a W&B client does: UpsertBucket, file_stream requests of up to
// 200 history rows, CreateRunFiles and uploads, and the final complete request when Finish is set.
func (s *Server) LogRun(ctx context.Context, spec RunSpec) error {
	cfg := map[string]any{}
	for k, v := range spec.Config {
		cfg[k] = map[string]any{"value": v}
	}
	cfgJSON, _ := json.Marshal(cfg)
	vars := map[string]any{"name": spec.ID, "project": spec.Project, "config": string(cfgJSON),
		"displayName": spec.Name, "groupName": spec.Group}
	q := `mutation UpsertBucket($name: String, $project: String, $config: JSONString, $displayName: String, $groupName: String) {
		upsertBucket(input: {name: $name, modelName: $project, config: $config, displayName: $displayName, groupName: $groupName}) {
			bucket { name project { name entity { name } } } } }`
	var up struct {
		Data struct {
			UpsertBucket struct {
				Bucket struct {
					Project struct {
						Entity struct{ Name string }
					}
				}
			}
		}
	}
	if err := s.post(ctx, "/graphql", map[string]any{"query": q, "variables": vars}, &up); err != nil {
		return err
	}
	entity := up.Data.UpsertBucket.Bucket.Project.Entity.Name
	fs := fmt.Sprintf("/files/%s/%s/%s/file_stream", entity, spec.Project, spec.ID)
	for off := 0; off < len(spec.Rows); off += 200 {
		end := min(off+200, len(spec.Rows))
		lines := make([]string, 0, end-off)
		for _, r := range spec.Rows[off:end] {
			b, _ := json.Marshal(r)
			lines = append(lines, string(b))
		}
		files := map[string]any{"wandb-history.jsonl": map[string]any{"offset": off, "content": lines}}
		if end == len(spec.Rows) && spec.Summary != nil {
			b, _ := json.Marshal(spec.Summary)
			files["wandb-summary.json"] = map[string]any{"offset": 0, "content": []string{string(b)}}
		}
		if err := s.post(ctx, fs, map[string]any{"files": files}, nil); err != nil {
			return err
		}
	}
	if len(spec.Output) > 0 {
		if err := s.post(ctx, fs, map[string]any{"files": map[string]any{"output.log": map[string]any{"offset": 0, "content": spec.Output}}}, nil); err != nil {
			return err
		}
	}
	var uploaded []string
	if len(spec.Files) > 0 {
		names := make([]string, 0, len(spec.Files))
		for n := range spec.Files {
			names = append(names, n)
		}
		var cr struct {
			Data struct {
				CreateRunFiles struct {
					Files []struct {
						Name      string `json:"name"`
						UploadURL string `json:"uploadUrl"`
					} `json:"files"`
				} `json:"createRunFiles"`
			} `json:"data"`
		}
		q := `mutation CreateRunFiles($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
			createRunFiles(input: {entityName: $entity, projectName: $project, runName: $run, files: $files}) { files { name uploadUrl } } }`
		if err := s.post(ctx, "/graphql", map[string]any{"query": q, "variables": map[string]any{
			"entity": entity, "project": spec.Project, "run": spec.ID, "files": names}}, &cr); err != nil {
			return err
		}
		for _, f := range cr.Data.CreateRunFiles.Files {
			req, _ := http.NewRequestWithContext(ctx, "PUT", f.UploadURL, bytes.NewReader(spec.Files[f.Name]))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("upload %s: %w", f.Name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("upload %s: status %d", f.Name, resp.StatusCode)
			}
			uploaded = append(uploaded, f.Name)
		}
	}
	if spec.Finish {
		return s.post(ctx, fs, map[string]any{"uploaded": uploaded, "complete": true, "exitcode": spec.Exit}, nil)
	}
	if len(uploaded) > 0 {
		return s.post(ctx, fs, map[string]any{"uploaded": uploaded}, nil)
	}
	return nil
}

func (s *Server) post(ctx context.Context, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", s.URL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	s.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || bytes.Contains(rb, []byte(`"errors"`)) {
		return fmt.Errorf("POST %s: status %d: %s", path, resp.StatusCode, rb)
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}

// DemoRuns returns a sweep-like study: every fusion × learning rate × seed, 10 epochs of 60 steps each,
// with the history keys and summary mami's trainer writes. The curves are synthetic but shaped like real
// ones (noisy decreasing losses, saturating F1), deterministic from seed.
func DemoRuns(project string, seed uint64) []RunSpec {
	rng := rand.New(rand.NewPCG(seed, 7))
	fusions := []struct {
		name    string
		quality float64
	}{{"concat", 0.80}, {"gmu", 0.83}, {"late", 0.77}, {"align", 0.81}}
	var out []RunSpec
	const epochs, steps = 10, 60
	n := 0
	for _, f := range fusions {
		for _, lr := range []float64{1e-3, 3e-4} {
			for s := range 3 {
				n++
				id := fmt.Sprintf("r%02d%s", n, strings.Repeat("x", 0))
				q := f.quality - 0.02*math.Abs(math.Log10(lr)+3.3) + rng.NormFloat64()*0.008
				var rows []map[string]any
				best, bestEpoch := 0.0, 0
				summary := map[string]any{}
				for step := 1; step <= epochs*steps; step++ {
					t := float64(step) / float64(epochs*steps)
					speed := 3 + lr*2000
					loss := 0.69*math.Exp(-speed*t) + (1-q)*0.55 + rng.NormFloat64()*0.035*math.Exp(-t)
					row := map[string]any{"_step": step, "_runtime": float64(step) * 0.21, "_timestamp": 1.7e9 + float64(step)*0.21,
						"train/loss": loss, "train/lr": lr, "epoch": (step-1)/steps + 1}
					if step%steps == 0 {
						ep := step / steps
						f1 := q - (q-0.5)*math.Exp(-speed*t*1.2) + rng.NormFloat64()*0.006 - 0.004*math.Max(0, float64(ep-6))*(lr*1000)
						vloss := 0.69*math.Exp(-speed*t*0.9) + (1-q)*0.6 + 0.01*math.Max(0, float64(ep-5))*(lr*1000)
						row["val/loss"] = vloss
						row["val/f1_macro"] = f1
						row["val/acc"] = f1 + 0.01
						row["val/auroc"] = math.Min(0.99, f1+0.07)
						row["train/epoch_loss"] = loss
						if f1 > best {
							best, bestEpoch = f1, ep
						}
					}
					rows = append(rows, row)
					for k, v := range row {
						summary[k] = v
					}
				}
				summary["best/epoch"] = bestEpoch
				summary["best/val/f1_macro"] = best
				summary["test/f1_macro"] = best - 0.015 + rng.NormFloat64()*0.005
				name := fmt.Sprintf("%s-lr%g-s%d", f.name, lr, s)
				out = append(out, RunSpec{
					Project: project, ID: id, Name: name, Group: f.name,
					Config: map[string]any{
						"model": map[string]any{"fusion": f.name, "head": "softmax_ce", "hidden": []int{512}, "dropout": 0.1},
						"train": map[string]any{"lr": lr, "batch_size": 64, "epochs": epochs, "optimizer": "adamw"},
						"run":   map[string]any{"seed": s},
					},
					Rows: rows, Summary: summary, Finish: true,
					Output: []string{"2026-11-28T09:00:00.000000 loading synthetic-mami (10000 memes)",
						fmt.Sprintf("2026-11-28T09:00:01.000000 model %s: 1,312,258 parameters", f.name),
						fmt.Sprintf("2026-11-28T09:02:06.000000 best val/f1_macro %.4f at epoch %d", best, bestEpoch)},
				})
			}
		}
	}
	return out
}
