package configs

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every environment variable that sets a config key (see EnvName).
const EnvPrefix = "MAMI_"

// nonConfigEnv are MAMI_ variables read elsewhere, never config keys; Load ignores them.
var nonConfigEnv = []string{"MAMI_API_KEY", "MAMI_CONFIG", "MAMI_LOG_LEVEL"}

// NonConfigEnv returns the MAMI_ environment variables that Load ignores because they are not
// config keys (MAMI_API_KEY is read by the tracking client itself).
func NonConfigEnv() []string { return slices.Clone(nonConfigEnv) }

//go:embed *.yaml
var presetFS embed.FS

// LoadOptions says where Load takes values from; the zero value gives the defaults.
type LoadOptions struct {
	// File is a YAML config file, or the bare name of an embedded preset ("seed", "seed.yaml") when no
	// file of that name exists. Empty: no file.
	File string
	// Environ is the environment as os.Environ returns it; only MAMI_ variables are read.
	// Nil means no environment, which keeps tests hermetic.
	Environ []string
	// Sets are "key=value" overrides applied last, in order; value is a YAML scalar or flow
	// collection ("[256,128]"), and a comma-separated value fills a list key ("a,b").
	Sets []string
}

// Load resolves a config from, lowest precedence first: the defaults, opts.File, MAMI_ variables of
// opts.Environ, and opts.Sets; then validates it. Every problem found is reported as a *FieldError
// naming the key and its source (file and line, environment variable or --set), joined with
// errors.Join. A missing file is an error wrapping fs.ErrNotExist.
func Load(opts LoadOptions) (*Config, error) {
	var data []byte
	name := ""
	if opts.File != "" {
		var err error
		if data, name, err = readConfig(opts.File); err != nil {
			return nil, err
		}
	}
	return load(name, data, opts.Environ, opts.Sets)
}

// Parse resolves a config from YAML data over the defaults and validates it, like Load with a file;
// name labels errors.
func Parse(name string, data []byte) (*Config, error) {
	if name == "" {
		name = "config"
	}
	return load(name, data, nil, nil)
}

// Presets returns the names of the embedded presets, e.g. "seed".
func Presets() []string {
	entries, _ := presetFS.ReadDir(".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

// Preset returns the YAML of the embedded preset name ("seed" or "seed.yaml").
func Preset(name string) ([]byte, error) {
	data, err := presetFS.ReadFile(strings.TrimSuffix(name, ".yaml") + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("preset %q: %w (presets: %s)", name, fs.ErrNotExist, strings.Join(Presets(), ", "))
	}
	return data, nil
}

func readConfig(file string) (data []byte, name string, err error) {
	data, err = os.ReadFile(file)
	if err == nil {
		return data, file, nil
	}
	bare := !strings.ContainsAny(file, `/\`) && (path.Ext(file) == "" || path.Ext(file) == ".yaml")
	if errors.Is(err, fs.ErrNotExist) && bare {
		if p, perr := Preset(file); perr == nil {
			return p, "preset " + strings.TrimSuffix(file, ".yaml") + ".yaml", nil
		}
		return nil, "", fmt.Errorf("read config %s: %w (no such preset either; presets: %s)", file, err, strings.Join(Presets(), ", "))
	}
	return nil, "", fmt.Errorf("read config %s: %w", file, err)
}

// value is one key's value from one source.
type value struct {
	key  string
	v    any
	file string
	line int
}

func load(name string, data []byte, environ, sets []string) (*Config, error) {
	var fileVals, envVals, setVals []value
	var errs []*FieldError
	if name != "" {
		fileVals, errs = parseYAML(name, data)
	}
	envVals, envErrs := parseEnv(environ)
	setVals, setErrs := parseSets(sets)
	// Values that failed to parse are left out; the rest is still merged and validated so that one
	// run reports every problem.
	errs = slices.Concat(errs, envErrs, setErrs)

	v := viper.New()
	def := Default()
	for _, f := range fields {
		d, _ := def.Get(f.key)
		v.SetDefault(f.key, d)
	}
	if err := v.MergeConfigMap(nest(fileVals)); err != nil {
		return nil, fmt.Errorf("merge %s: %w", name, err)
	}
	for _, val := range slices.Concat(envVals, setVals) {
		v.Set(val.key, val.v) // viper's override layer: later entries win
	}
	source := make(map[string]value) // where the winning value of each key came from
	for _, val := range slices.Concat(fileVals, envVals, setVals) {
		source[val.key] = val
	}
	cfg := new(Config)
	if err := v.UnmarshalExact(cfg, func(dc *mapstructure.DecoderConfig) { dc.WeaklyTypedInput = false }); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	cfg.normalize()
	verrs := cfg.validate()
	for _, e := range verrs {
		src, ok := source[e.Field]
		if !ok {
			src, ok = source[e.cause]
		}
		if ok {
			e.File, e.Line = src.file, src.line
		}
	}
	errs = append(errs, verrs...)
	if len(errs) > 0 {
		return nil, joinFieldErrors(errs)
	}
	return cfg, nil
}

// nest turns dot keys into the nested maps viper's config layer holds.
func nest(vals []value) map[string]any {
	root := make(map[string]any)
	for _, val := range vals {
		parts := strings.Split(val.key, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = make(map[string]any)
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = val.v
	}
	return root
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML reads the keys of one YAML document, checking each against the known keys and types.
func parseYAML(name string, data []byte) ([]value, []*FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, []*FieldError{yamlError(name, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, []*FieldError{yamlError(name, data, err)}
		}
		return nil, []*FieldError{{File: name, Line: extra.Line, Msg: "want one YAML document, found a second"}}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, []*FieldError{{File: name, Line: root.Line, Msg: "want a mapping of config keys, got " + nodeKind(root)}}
	}
	p := &yamlParser{name: name, seen: make(map[string]int)}
	p.mapping("", root)
	return p.vals, p.errs
}

type yamlParser struct {
	name string
	seen map[string]int // key -> line first set
	vals []value
	errs []*FieldError
}

func (p *yamlParser) fail(key string, line int, msg string, err error) {
	p.errs = append(p.errs, &FieldError{Field: key, File: p.name, Line: line, Msg: msg, Err: err})
}

func (p *yamlParser) mapping(prefix string, m *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, n := m.Content[i], resolve(m.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			p.fail("", k.Line, "want a plain key (anchors merged with << are not supported)", nil)
			continue
		}
		key := prefix + k.Value
		if first, dup := p.seen[key]; dup {
			p.fail(key, k.Line, fmt.Sprintf("duplicate key, first set on line %d", first), nil)
			continue
		}
		p.seen[key] = k.Line
		if f, ok := fieldMap[key]; ok {
			v, msg := convert(f.typ, nodeValue(n, f.typ))
			if msg != "" {
				p.fail(key, n.Line, msg, nil)
				continue
			}
			p.vals = append(p.vals, value{key: key, v: v.Interface(), file: p.name, line: n.Line})
			continue
		}
		if slices.Contains(sections, key) {
			switch {
			case n.Kind == yaml.MappingNode:
				p.mapping(key+".", n)
			case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
			default:
				p.fail(key, n.Line, fmt.Sprintf("want a mapping of %s.* keys, got %s", key, nodeKind(n)), nil)
			}
			continue
		}
		p.fail(key, k.Line, "unknown key"+hint(key), ErrUnknownKey)
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// nodeValue turns a YAML node into the generic value convert takes. Scalars bound for string keys
// keep their literal text (run.id: 0042 stays "0042"); null becomes nil; mappings fail conversion.
func nodeValue(n *yaml.Node, t reflect.Type) any {
	n = resolve(n)
	stringy := t.Kind() == reflect.String || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String)
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		if stringy {
			return n.Value
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return n.Value
		}
		return v
	case yaml.SequenceNode:
		elem := t
		if t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			if c = resolve(c); c.Kind != yaml.ScalarNode {
				out[i] = nested{} // no config value nests deeper; this also stops cyclic aliases
				continue
			}
			out[i] = nodeValue(c, elem)
		}
		return out
	}
	return map[string]any{}
}

// nested stands for a collection inside a list, which no key accepts.
type nested struct{}

func (nested) String() string { return "[...]" }

func yamlError(name string, data []byte, err error) *FieldError {
	msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	return &FieldError{File: name, Line: syntaxLine(data, line), Msg: "invalid YAML: " + msg}
}

// syntaxLine finds the line of a YAML syntax error. yaml.v3 often reports the line where the
// enclosing block starts; the first line of the error is instead the one after the longest prefix of
// the document that still parses (an error, once in, stays in every longer prefix).
func syntaxLine(data []byte, reported int) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 1000 {
		return reported
	}
	for k := len(lines) - 1; k >= 0; k-- {
		if parses(bytes.Join(lines[:k], nil)) {
			return k + 1
		}
	}
	return reported
}

// parses reports whether every YAML document in data is well formed.
func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		switch err := dec.Decode(&n); {
		case errors.Is(err, io.EOF):
			return true
		case err != nil:
			return false
		}
	}
}

// parseValue reads a value given as text (an environment variable or a --set entry) for type t.
func parseValue(raw string, t reflect.Type) any {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil || len(doc.Content) == 0 {
		if strings.TrimSpace(raw) == "" {
			return nil
		}
		return raw
	}
	n := doc.Content[0]
	if t.Kind() == reflect.String && n.Kind != yaml.ScalarNode {
		return raw // "--set run.notes=a: b" is a string, not a mapping
	}
	if t.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode && n.Tag != "!!null" && strings.Contains(n.Value, ",") {
		parts := strings.Split(n.Value, ",")
		out := make([]any, len(parts))
		for i, s := range parts {
			out[i] = parseValue(strings.TrimSpace(s), t.Elem())
		}
		return out
	}
	return nodeValue(n, t)
}

// parseEnv reads MAMI_ variables; one that looks like a config key but is not one is an error.
func parseEnv(environ []string) ([]value, []*FieldError) {
	var vals []value
	var errs []*FieldError
	for _, kv := range environ {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || slices.Contains(nonConfigEnv, name) {
			continue
		}
		src := "$" + name
		key, ok := envNames[name]
		if !ok {
			if looksLikeConfig(name) {
				msg := "unknown config variable"
				if best := closest(name, slices.Sorted(mapKeys(envNames))); best != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", best)
				}
				errs = append(errs, &FieldError{File: src, Msg: msg, Err: ErrUnknownKey})
			}
			continue
		}
		f := fieldMap[key]
		v, msg := convert(f.typ, parseValue(raw, f.typ))
		if msg != "" {
			errs = append(errs, &FieldError{Field: key, File: src, Value: raw, Msg: msg})
			continue
		}
		vals = append(vals, value{key: key, v: v.Interface(), file: src})
	}
	return vals, errs
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// looksLikeConfig reports whether a MAMI_ variable was probably meant as a config key: it starts with
// a section name (MAMI_TRAIN_...) or is a near miss of a key's variable (MAMI_WORKDR).
func looksLikeConfig(name string) bool {
	rest := strings.TrimPrefix(name, EnvPrefix)
	for _, s := range sections {
		if !strings.Contains(s, ".") && strings.HasPrefix(rest, strings.ToUpper(s)+"_") {
			return true
		}
	}
	for env := range envNames {
		if levenshtein(name, env) <= 2 {
			return true
		}
	}
	return false
}

// parseSets reads "key=value" entries.
func parseSets(sets []string) ([]value, []*FieldError) {
	var vals []value
	var errs []*FieldError
	for _, entry := range sets {
		key, raw, ok := strings.Cut(entry, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			errs = append(errs, &FieldError{Field: entry, File: SourceSet, Msg: "want key=value, e.g. --set train.lr=3e-4"})
			continue
		}
		f, known := fieldMap[key]
		if !known {
			msg := "unknown key" + hint(key)
			if slices.Contains(sections, key) {
				msg = fmt.Sprintf("names a group of keys; set one key, e.g. %s", firstKeyUnder(key))
			}
			errs = append(errs, &FieldError{Field: key, File: SourceSet, Msg: msg, Err: ErrUnknownKey})
			continue
		}
		v, msg := convert(f.typ, parseValue(raw, f.typ))
		if msg != "" {
			errs = append(errs, &FieldError{Field: key, File: SourceSet, Value: raw, Msg: msg})
			continue
		}
		vals = append(vals, value{key: key, v: v.Interface(), file: SourceSet})
	}
	return vals, errs
}

func firstKeyUnder(section string) string {
	for _, f := range fields {
		if strings.HasPrefix(f.key, section+".") {
			return f.key
		}
	}
	return section
}
