package wandb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultBaseURL is the W&B cloud endpoint used when no base URL is configured.
const DefaultBaseURL = "https://api.wandb.ai"

// DefaultProject is the project runs go to when none is configured, as with the official clients.
const DefaultProject = "uncategorized"

// Modes accepted in Settings.Mode.
const (
	ModeOnline   = "online"
	ModeOffline  = "offline"
	ModeDisabled = "disabled"
)

// Resume policies accepted in Settings.Resume (WANDB_RESUME).
const (
	ResumeNone  = ""      // create or overwrite the run without asking the server first
	ResumeAllow = "allow" // continue the run if the server has it, else create it
	ResumeMust  = "must"  // the server must have the run
	ResumeNever = "never" // the server must not have the run
)

// Settings says where and as what a run is streamed. The zero value is not usable online: call SettingsFrom.
type Settings struct {
	BaseURL string // WANDB_BASE_URL, tracking.base_url; default DefaultBaseURL
	APIKey  string // WANDB_API_KEY, tracking.api_key, then ~/.netrc
	Entity  string // WANDB_ENTITY, tracking.entity; empty: the viewer's default entity
	Project string // WANDB_PROJECT, tracking.project, run.project; default DefaultProject
	Mode    string // WANDB_MODE, tracking.mode: online | offline | disabled
	RunID   string // WANDB_RUN_ID, run.id
	Name    string // WANDB_NAME, run.name (display name)
	Group   string // WANDB_RUN_GROUP, run.group
	Notes   string // WANDB_NOTES, run.notes
	Resume  string // WANDB_RESUME: allow | must | never (auto means allow), empty for none
	SweepID string // WANDB_SWEEP_ID, run.sweep_id
	Tags    []string
}

// SettingsError is a setting with a value that cannot be used; Source names where the value came from.
type SettingsError struct {
	Field, Value, Source, Reason string
}

func (e *SettingsError) Error() string {
	return fmt.Sprintf("wandb settings: %s=%q (from %s): %s", e.Field, e.Value, e.Source, e.Reason)
}

// SettingsFrom resolves the settings of a run: a WANDB_* variable in environ wins over the same setting in
// fromConfig (which the caller fills from tracking.* and run.*). The API key falls back to the netrc file at
// netrcPath (empty: $NETRC, else $HOME/.netrc), looked up by the host of the base URL, as `wandb login`
// writes it. An online run without a key is an error; offline and disabled runs need none.
func SettingsFrom(environ []string, netrcPath string, fromConfig Settings) (Settings, error) {
	env := envMap(environ)
	s := fromConfig
	src := map[string]string{}
	pick := func(field string, dst *string, names ...string) {
		if *dst != "" {
			src[field] = "config"
		}
		for _, n := range names {
			if v, ok := env[n]; ok && v != "" {
				*dst, src[field] = v, n
				return
			}
		}
	}
	pick("base_url", &s.BaseURL, "WANDB_BASE_URL")
	pick("api_key", &s.APIKey, "WANDB_API_KEY")
	pick("entity", &s.Entity, "WANDB_ENTITY")
	pick("project", &s.Project, "WANDB_PROJECT")
	pick("mode", &s.Mode, "WANDB_MODE")
	pick("run_id", &s.RunID, "WANDB_RUN_ID")
	pick("name", &s.Name, "WANDB_NAME")
	pick("group", &s.Group, "WANDB_RUN_GROUP")
	pick("notes", &s.Notes, "WANDB_NOTES")
	pick("resume", &s.Resume, "WANDB_RESUME")
	pick("sweep_id", &s.SweepID, "WANDB_SWEEP_ID")
	if v, ok := env["WANDB_TAGS"]; ok && v != "" {
		s.Tags = splitTags(v)
	}
	s.Tags = append([]string(nil), s.Tags...)

	if s.BaseURL == "" {
		s.BaseURL, src["base_url"] = DefaultBaseURL, "default"
	}
	s.BaseURL = strings.TrimRight(s.BaseURL, "/")
	u, err := url.Parse(s.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, &SettingsError{"base_url", s.BaseURL, src["base_url"], "want an http:// or https:// URL"}
	}
	if s.Project == "" {
		s.Project = DefaultProject
	}
	switch strings.ToLower(s.Mode) {
	case "", ModeOnline, "run":
		s.Mode = ModeOnline
	case ModeOffline, "dryrun":
		s.Mode = ModeOffline
	case ModeDisabled:
		s.Mode = ModeDisabled
	default:
		return s, &SettingsError{"mode", s.Mode, src["mode"], "want online, offline or disabled"}
	}
	switch strings.ToLower(s.Resume) {
	case "", "false":
		s.Resume = ResumeNone
	case ResumeAllow, "auto", "true":
		s.Resume = ResumeAllow
	case ResumeMust:
		s.Resume = ResumeMust
	case ResumeNever:
		s.Resume = ResumeNever
	default:
		return s, &SettingsError{"resume", s.Resume, src["resume"], "want allow, must or never"}
	}
	if s.APIKey == "" && s.Mode == ModeOnline {
		if netrcPath == "" {
			netrcPath = env["NETRC"]
		}
		if netrcPath == "" && env["HOME"] != "" {
			netrcPath = filepath.Join(env["HOME"], ".netrc")
		}
		if netrcPath != "" {
			key, err := netrcPassword(netrcPath, u.Hostname())
			if err != nil {
				return s, err
			}
			s.APIKey = key
		}
		if s.APIKey == "" {
			return s, &SettingsError{"api_key", "", "environment, config and netrc",
				fmt.Sprintf("no API key for %s: set WANDB_API_KEY or tracking.api_key, or run `wandb login --host %s`", u.Host, s.BaseURL)}
		}
	}
	return s, nil
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func splitTags(v string) []string {
	var tags []string
	for t := range strings.SplitSeq(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// netrcPassword returns the password of `machine host` in the netrc file at path, or "" when the file or
// the machine is absent.
func netrcPassword(path, host string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read netrc %s: %w", path, err)
	}
	entries, err := ParseNetrc(b)
	if err != nil {
		return "", fmt.Errorf("netrc %s: %w", path, err)
	}
	var deflt string
	for _, e := range entries {
		switch e.Machine {
		case host:
			return e.Password, nil
		case "":
			deflt = e.Password
		}
	}
	return deflt, nil
}

// NetrcEntry is one machine of a netrc file; Machine is empty for the `default` entry.
type NetrcEntry struct{ Machine, Login, Password string }

// ParseNetrc parses the tokens of a netrc file (machine, default, login, password, account, macdef).
func ParseNetrc(b []byte) ([]NetrcEntry, error) {
	var (
		entries []NetrcEntry
		cur     *NetrcEntry
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	var pending string // a keyword waiting for its value
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		if pending == "macdef" { // a macro runs to the next blank line
			if strings.TrimSpace(text) == "" {
				pending = ""
			}
			continue
		}
		for _, tok := range strings.Fields(text) {
			switch pending {
			case "":
				switch tok {
				case "machine", "login", "password", "account", "macdef":
					pending = tok
				case "default":
					entries = append(entries, NetrcEntry{})
					cur = &entries[len(entries)-1]
				default:
					return nil, fmt.Errorf("line %d: unexpected token %q", line, tok)
				}
				continue
			case "machine":
				entries = append(entries, NetrcEntry{Machine: tok})
				cur = &entries[len(entries)-1]
			case "login", "password":
				if cur == nil {
					return nil, fmt.Errorf("line %d: %s before any machine", line, pending)
				}
				if pending == "login" {
					cur.Login = tok
				} else {
					cur.Password = tok
				}
			case "macdef":
				continue // the macro name; its body follows on the next lines
			}
			pending = ""
		}
		if pending == "macdef" {
			continue
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if pending != "" && pending != "macdef" {
		return nil, fmt.Errorf("line %d: %s without a value", line, pending)
	}
	return entries, nil
}

// ConfigSettings reads the settings a resolved mami config.yaml (as a run directory keeps it) carries:
// run.{id,name,project,group,tags,notes,sweep_id} and tracking.{mode,base_url,api_key,entity,project}, and
// tracking.upload_checkpoints. Pass the result to SettingsFrom as fromConfig.
func ConfigSettings(configYAML []byte) (Settings, bool, error) {
	var c struct {
		Run struct {
			ID, Name, Project, Group, Notes string
			Tags                            []string
			SweepID                         string `yaml:"sweep_id"`
		}
		Tracking struct {
			Mode, Entity, Project string
			BaseURL               string `yaml:"base_url"`
			APIKey                string `yaml:"api_key"`
			UploadCheckpoints     bool   `yaml:"upload_checkpoints"`
		}
	}
	if err := yaml.Unmarshal(configYAML, &c); err != nil {
		return Settings{}, false, fmt.Errorf("parse config: %w", err)
	}
	s := Settings{
		BaseURL: c.Tracking.BaseURL, APIKey: c.Tracking.APIKey, Entity: c.Tracking.Entity,
		Project: c.Run.Project, Mode: c.Tracking.Mode, RunID: c.Run.ID, Name: c.Run.Name,
		Group: c.Run.Group, Notes: c.Run.Notes, SweepID: c.Run.SweepID, Tags: c.Run.Tags,
	}
	if c.Tracking.Project != "" {
		s.Project = c.Tracking.Project
	}
	return s, c.Tracking.UploadCheckpoints, nil
}
