package wandb_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mami-lab/mami/runs/wandb"
)

func TestSettingsFrom(t *testing.T) {
	dir := t.TempDir()
	netrc := filepath.Join(dir, "netrc")
	must(t, os.WriteFile(netrc, []byte("machine api.wandb.ai\n  login user\n  password cloudkey\nmachine localhost login user password localkey\n"), 0o600))
	cfg := wandb.Settings{BaseURL: "http://localhost:8080/", Project: "cfgproj", Mode: "online", RunID: "cfgid", Tags: []string{"a"}, APIKey: ""}
	tests := []struct {
		name    string
		env     []string
		cfg     wandb.Settings
		want    func(wandb.Settings) string // "" when fine
		wantErr string                      // field of the SettingsError
	}{
		{name: "config with netrc key", cfg: cfg, want: func(s wandb.Settings) string {
			if s.APIKey != "localkey" || s.BaseURL != "http://localhost:8080" || s.Project != "cfgproj" || s.RunID != "cfgid" {
				return "want localkey from netrc, trimmed base URL, config project and run id"
			}
			return ""
		}},
		{name: "environment wins", cfg: cfg, env: []string{"WANDB_BASE_URL=https://api.wandb.ai", "WANDB_PROJECT=envproj",
			"WANDB_RUN_ID=envid", "WANDB_TAGS=x, y,,z", "WANDB_NAME=n", "WANDB_RUN_GROUP=g", "WANDB_NOTES=hi",
			"WANDB_ENTITY=team", "WANDB_RESUME=auto", "WANDB_SWEEP_ID=sw"},
			want: func(s wandb.Settings) string {
				if s.APIKey != "cloudkey" || s.Project != "envproj" || s.RunID != "envid" || !slices.Equal(s.Tags, []string{"x", "y", "z"}) ||
					s.Name != "n" || s.Group != "g" || s.Notes != "hi" || s.Entity != "team" || s.Resume != wandb.ResumeAllow || s.SweepID != "sw" {
					return "want every WANDB_* value, the cloud key from netrc, auto resume as allow"
				}
				return ""
			}},
		{name: "env key wins over config and netrc", cfg: wandb.Settings{APIKey: "cfgkey", BaseURL: "http://localhost:1"},
			env: []string{"WANDB_API_KEY=envkey"}, want: func(s wandb.Settings) string {
				if s.APIKey != "envkey" {
					return "want envkey"
				}
				return ""
			}},
		{name: "config key wins over netrc", cfg: wandb.Settings{APIKey: "cfgkey", BaseURL: "http://localhost:1"},
			want: func(s wandb.Settings) string {
				if s.APIKey != "cfgkey" {
					return "want cfgkey"
				}
				return ""
			}},
		{name: "defaults", cfg: wandb.Settings{}, env: []string{"WANDB_MODE=dryrun"}, want: func(s wandb.Settings) string {
			if s.BaseURL != wandb.DefaultBaseURL || s.Project != wandb.DefaultProject || s.Mode != wandb.ModeOffline {
				return "want default URL and project, dryrun as offline"
			}
			return ""
		}},
		{name: "no key online", cfg: wandb.Settings{BaseURL: "http://nokey.example"}, wantErr: "api_key"},
		{name: "no key offline is fine", cfg: wandb.Settings{BaseURL: "http://nokey.example", Mode: "offline"}, want: func(wandb.Settings) string { return "" }},
		{name: "bad mode", cfg: cfg, env: []string{"WANDB_MODE=sometimes"}, wantErr: "mode"},
		{name: "bad resume", cfg: cfg, env: []string{"WANDB_RESUME=maybe"}, wantErr: "resume"},
		{name: "bad url", cfg: wandb.Settings{BaseURL: "localhost:8080"}, wantErr: "base_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := wandb.SettingsFrom(tt.env, netrc, tt.cfg)
			if tt.wantErr != "" {
				var se *wandb.SettingsError
				if !errors.As(err, &se) || se.Field != tt.wantErr {
					t.Fatalf("err %v, want a SettingsError on %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.want(s); msg != "" {
				t.Errorf("got %+v: %s", s, msg)
			}
		})
	}
}

func TestSettingsNetrcFromHome(t *testing.T) {
	home := t.TempDir()
	must(t, os.WriteFile(filepath.Join(home, ".netrc"), []byte("default login user password anykey\n"), 0o600))
	s, err := wandb.SettingsFrom([]string{"HOME=" + home}, "", wandb.Settings{BaseURL: "http://h:1"})
	if err != nil || s.APIKey != "anykey" {
		t.Errorf("got %q, %v; want the default entry of $HOME/.netrc", s.APIKey, err)
	}
}

func TestParseNetrc(t *testing.T) {
	tests := []struct {
		in      string
		want    []wandb.NetrcEntry
		wantErr bool
	}{
		{in: "machine a login u password p", want: []wandb.NetrcEntry{{"a", "u", "p"}}},
		{in: "# comment\nmachine a\n\tlogin u\n\tpassword p\n\nmachine b password q", want: []wandb.NetrcEntry{{"a", "u", "p"}, {"b", "", "q"}}},
		{in: "macdef init\ncd /tmp\nput x\n\nmachine m password k", want: []wandb.NetrcEntry{{"m", "", "k"}}},
		{in: "default password d", want: []wandb.NetrcEntry{{"", "", "d"}}},
		{in: "machine a login", wantErr: true},
		{in: "password p", wantErr: true},
		{in: "bogus", wantErr: true},
	}
	for _, tt := range tests {
		got, err := wandb.ParseNetrc([]byte(tt.in))
		if (err != nil) != tt.wantErr || (!tt.wantErr && !slices.Equal(got, tt.want)) {
			t.Errorf("ParseNetrc(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseNetrc(f *testing.F) {
	f.Add([]byte("machine api.wandb.ai\n  login user\n  password abc\n"))
	f.Add([]byte("macdef x\nline\n\ndefault password p"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := wandb.ParseNetrc(b)
		if err != nil {
			return
		}
		for _, e := range entries {
			for _, s := range []string{e.Machine, e.Login, e.Password} {
				if len(s) > len(b) {
					t.Fatalf("entry %q longer than the input", s)
				}
			}
		}
	})
}

func TestConfigSettings(t *testing.T) {
	r := newFakeRun(t, "cfg")
	b, err := os.ReadFile(filepath.Join(r.dir, "config.yaml"))
	must(t, err)
	s, upload, err := wandb.ConfigSettings(b)
	must(t, err)
	if s.RunID != "cfg" || s.Project != "mami" || s.Group != "study" || !slices.Equal(s.Tags, []string{"seed", "concat"}) ||
		s.Mode != "online" || s.APIKey != "secret-key-that-must-not-leave" || !upload {
		t.Errorf("ConfigSettings = %+v, upload %v", s, upload)
	}
	if _, _, err := wandb.ConfigSettings([]byte("run: [")); err == nil {
		t.Error("bad YAML: no error")
	}
}

func TestParseNvidiaSMI(t *testing.T) {
	out := "0, 87, 40000, 81559, 61, 250.12\n1, [N/A], 100, 1000, 30, [N/A]\n"
	m := wandb.ParseNvidiaSMI([]byte(out))
	want := map[string]any{
		"system.gpu.0.gpu": 87.0, "system.gpu.0.memoryAllocatedBytes": 40000.0 * (1 << 20), "system.gpu.0.memory": 49.04,
		"system.gpu.0.temp": 61.0, "system.gpu.0.powerWatts": 250.12,
		"system.gpu.1.memoryAllocatedBytes": 100.0 * (1 << 20), "system.gpu.1.memory": 10.0, "system.gpu.1.temp": 30.0,
	}
	if len(m) != len(want) {
		t.Errorf("got %d metrics %v, want %d", len(m), m, len(want))
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}
