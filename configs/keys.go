package configs

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// KeyInfo documents one config key; Reference lists them all.
type KeyInfo struct {
	Key     string   // dot path, e.g. "train.lr"
	Type    string   // string, integer, number, boolean, list of integers, list of strings
	Env     string   // environment variable that sets the key, e.g. "MAMI_TRAIN_LR"
	Default string   // default value, written as YAML
	Allowed []string // the allowed values of an enumerated key, nil otherwise
	Help    string   // one sentence: meaning and constraints
}

// field is one leaf of Config reached by a dot key.
type field struct {
	key   string
	index []int        // reflect field index path from Config
	typ   reflect.Type // Go type of the leaf
	spec  *keySpec
}

// keySpec holds the per-key documentation and the check applied to the key alone.
type keySpec struct {
	key     string
	allowed []string
	help    string
	check   func(v any) string // "" when v is acceptable
}

var (
	fusions       = []string{"concat", "late", "align", "cross", "gmu", "image_only", "text_only"}
	heads         = []string{"double_softmax", "softmax_ce", "bce"}
	metrics       = []string{"val/loss", "val/acc", "val/f1_macro", "val/auroc"}
	optimizers    = []string{"adamw", "adam", "sgd"}
	schedules     = []string{"constant", "cosine"}
	trackingModes = []string{"auto", "offline", "online", "disabled"}
	devices       = []string{"cpu", "cuda", "auto"}
	datasets      = []string{"synthetic-mami", "mami"}
)

// specs lists every key in the order of Config; keys_test checks it matches the struct.
var specs = []keySpec{
	{key: "workdir", help: "Directory for run records, checkpoints and caches.", check: nonEmpty},
	{key: "device", allowed: devices, help: "Compute device; auto picks cuda when available."},
	{key: "run.id", help: `Run directory name: letters, digits, "_", "." and "-"; empty means generate one when the run starts.`, check: checkRunID},
	{key: "run.name", help: "Display name of the run."},
	{key: "run.project", help: "Project the run belongs to (the W&B project).", check: nonEmpty},
	{key: "run.group", help: "Group of related runs (the W&B group)."},
	{key: "run.tags", help: "Tags of the run; each must be non-empty.", check: checkTags},
	{key: "run.notes", help: "Free-text notes."},
	{key: "run.seed", help: "Seed of the splits, initialisation, dropout masks and shuffling."},
	{key: "run.sweep_id", help: "Sweep the run belongs to; set by the sweep engine.", check: checkSweepID},
	{key: "data.dataset", allowed: datasets, help: "Dataset: the built-in synthetic stand-in or the real MAMI release (needs data.path and data.features)."},
	{key: "data.path", help: "MAMI folder holding training.csv, Test.csv and test_labels.txt (data.dataset mami)."},
	{key: "data.features", help: "CLIP feature file, .safetensors or .npy (data.dataset mami)."},
	{key: "data.val_fraction", help: "Validation share of what remains after the test split, in (0,1); with test_fraction sums below 1.", check: openUnit},
	{key: "data.test_fraction", help: "Test share of the labelled memes, in (0,1).", check: openUnit},
	{key: "model.fusion", allowed: fusions, help: "How image and text embeddings are combined."},
	{key: "model.head", allowed: heads, help: "Classifier head and loss; double_softmax (the original study's) only with fusion concat."},
	{key: "model.hidden", help: "Hidden layer sizes of the classifier, each > 0; [] for none.", check: positiveInts},
	{key: "model.dropout", help: "Dropout probability, in [0,1).", check: halfOpenUnit},
	{key: "model.proj_dim", help: "Projection size used by the align, cross and gmu fusions, > 0.", check: minInt(1)},
	{key: "train.epochs", help: "Passes over the training split, >= 1.", check: minInt(1)},
	{key: "train.batch_size", help: "Samples per micro-batch, >= 1.", check: minInt(1)},
	{key: "train.accumulate", help: "Micro-batches accumulated per optimizer step, >= 1.", check: minInt(1)},
	{key: "train.lr", help: "Peak learning rate, > 0.", check: positive},
	{key: "train.optimizer", allowed: optimizers, help: "adamw: decoupled weight decay; adam: L2 added to the gradient; sgd: plain."},
	{key: "train.beta1", help: "Adam first-moment decay, in [0,1).", check: halfOpenUnit},
	{key: "train.beta2", help: "Adam second-moment decay, in [0,1).", check: halfOpenUnit},
	{key: "train.eps", help: "Adam denominator epsilon, > 0.", check: positive},
	{key: "train.weight_decay", help: "Weight decay, >= 0.", check: nonNegative},
	{key: "train.clip_norm", help: "Maximum global gradient norm, >= 0; 0 turns clipping off.", check: nonNegative},
	{key: "train.schedule", allowed: schedules, help: "Learning-rate schedule; cosine is a linear warm-up then cosine decay to 0."},
	{key: "train.warmup_steps", help: "Optimizer steps of linear warm-up, >= 0.", check: minInt(0)},
	{key: "train.early_stop.metric", allowed: append([]string{""}, metrics...), help: `Validation metric watched for early stopping; "" turns it off.`},
	{key: "train.early_stop.patience", help: "Epochs without improvement before stopping, >= 1 when a metric is set.", check: minInt(0)},
	{key: "train.eval_test", help: "Score the test split once training ends."},
	{key: "tracking.mode", allowed: trackingModes, help: "auto: stream when a server is named (WANDB_BASE_URL, or a tracking.base_url other than the default), else record locally only; offline: record locally only, even when a server is named; online: also stream to tracking.base_url (wandb.ai by default); disabled: no tracking at all."},
	{key: "tracking.base_url", help: "Base URL of the W&B-compatible server (http or https).", check: checkURL},
	{key: "tracking.api_key", help: "API key of the server; better given as MAMI_TRACKING_API_KEY. Never written to run records."},
	{key: "tracking.entity", help: "W&B entity (user or team); empty means the key's default entity."},
	{key: "tracking.upload_checkpoints", help: "Upload the best checkpoint as a run file."},
}

var (
	fields   []*field          // in struct order
	fieldMap map[string]*field // by key
	sections []string          // keys that name a group of keys: "run", "train.early_stop", ...
	envNames map[string]string // environment variable -> key
)

func init() {
	byKey := make(map[string]*keySpec, len(specs))
	for i := range specs {
		byKey[specs[i].key] = &specs[i]
	}
	fieldMap = make(map[string]*field)
	envNames = make(map[string]string)
	walk(reflect.TypeFor[Config](), "", nil, byKey)
	for _, f := range fields {
		envNames[EnvName(f.key)] = f.key
	}
}

func walk(t reflect.Type, prefix string, index []int, byKey map[string]*keySpec) {
	for i := range t.NumField() {
		sf := t.Field(i)
		key := prefix + sf.Tag.Get("mapstructure")
		idx := append(slices.Clone(index), i)
		if sf.Type.Kind() == reflect.Struct {
			sections = append(sections, key)
			walk(sf.Type, key+".", idx, byKey)
			continue
		}
		f := &field{key: key, index: idx, typ: sf.Type, spec: byKey[key]}
		if f.spec == nil {
			f.spec = &keySpec{key: key} // caught by TestReferenceCoversStruct
		}
		fields = append(fields, f)
		fieldMap[key] = f
	}
}

// Keys returns every config key as a dot path ("train.lr"), in the order of default.yaml.
func Keys() []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// EnvName returns the environment variable that sets key: "train.lr" -> "MAMI_TRAIN_LR".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Reference documents every key, in the order of Keys; docs/config.md is checked against it.
func Reference() []KeyInfo {
	def := Default()
	out := make([]KeyInfo, len(fields))
	for i, f := range fields {
		v, _ := def.Get(f.key)
		out[i] = KeyInfo{
			Key:     f.key,
			Type:    typeName(f.typ),
			Env:     EnvName(f.key),
			Default: formatValue(v),
			Allowed: slices.Clone(f.spec.allowed),
			Help:    f.spec.help,
		}
	}
	return out
}

// Get returns the value of key: a string, int, int64, float64, bool, []int or []string (a copy).
func (c *Config) Get(key string) (any, error) {
	f, err := lookup(key)
	if err != nil {
		return nil, err
	}
	v := reflect.ValueOf(c).Elem().FieldByIndex(f.index).Interface()
	switch s := v.(type) {
	case []int:
		return slices.Clone(s), nil
	case []string:
		return slices.Clone(s), nil
	}
	return v, nil
}

// Set assigns value to key after the same type and range checks Load applies to that key alone
// (checks across keys, like head against fusion, wait for Validate). Value may be any Go value a YAML
// or JSON decoder produces: integral floats are accepted for integer keys, numbers for string keys,
// and a single element for list keys. On error c is unchanged and the error is a *FieldError.
func (c *Config) Set(key string, value any) error {
	f, err := lookup(key)
	if err != nil {
		return err
	}
	v, msg := convert(f.typ, value)
	if msg == "" {
		msg = f.check(v.Interface())
	}
	if msg != "" {
		return &FieldError{Field: key, Value: value, Allowed: slices.Clone(f.spec.allowed), Msg: msg}
	}
	reflect.ValueOf(c).Elem().FieldByIndex(f.index).Set(v)
	return nil
}

func lookup(key string) (*field, error) {
	if f, ok := fieldMap[key]; ok {
		return f, nil
	}
	return nil, &FieldError{Field: key, Msg: "unknown key" + hint(key), Err: ErrUnknownKey}
}

// check runs the key's own check: membership for enumerations, then its range check.
func (f *field) check(v any) string {
	if f.spec.allowed != nil {
		s := v.(string)
		if !slices.Contains(f.spec.allowed, s) {
			return fmt.Sprintf("must be one of %s, got %q", listAllowed(f.spec.allowed), s)
		}
	}
	if f.spec.check != nil {
		return f.spec.check(v)
	}
	return ""
}

func listAllowed(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = v
		if v == "" {
			q[i] = `""`
		}
	}
	return strings.Join(q, ", ")
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	}
	return t.String()
}

// convert turns v into a value of type t, or explains why it cannot ("want an integer, got "ten"").
func convert(t reflect.Type, v any) (reflect.Value, string) {
	switch t.Kind() {
	case reflect.String:
		if s, ok := scalarText(v); ok {
			if !utf8.ValidString(s) {
				return reflect.Value{}, "want UTF-8 text, got " + describe(v)
			}
			return reflect.ValueOf(s).Convert(t), ""
		}
		return reflect.Value{}, "want a string, got " + describe(v)
	case reflect.Int, reflect.Int64:
		n, ok := toInt(v)
		out := reflect.New(t).Elem()
		if !ok || out.OverflowInt(n) {
			return reflect.Value{}, "want an integer, got " + describe(v)
		}
		out.SetInt(n)
		return out, ""
	case reflect.Float64:
		if x, ok := toFloat(v); ok {
			return reflect.ValueOf(x), ""
		}
		return reflect.Value{}, "want a number, got " + describe(v)
	case reflect.Bool:
		if b, ok := v.(bool); ok {
			return reflect.ValueOf(b), ""
		}
		return reflect.Value{}, "want true or false, got " + describe(v)
	case reflect.Slice:
		return convertList(t, v)
	}
	return reflect.Value{}, fmt.Sprintf("unsupported type %s", t)
}

func convertList(t reflect.Type, v any) (reflect.Value, string) {
	want := "want a list of " + typeName(t.Elem()) + "s, got " + describe(v)
	if v == nil {
		return reflect.MakeSlice(t, 0, 0), "" // empty, not nil: viper treats nil as unset
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		// A single element stands for a list of one.
		e, msg := convert(t.Elem(), v)
		if msg != "" {
			return reflect.Value{}, want
		}
		out := reflect.MakeSlice(t, 1, 1)
		out.Index(0).Set(e)
		return out, ""
	}
	out := reflect.MakeSlice(t, rv.Len(), rv.Len())
	for i := range rv.Len() {
		e, msg := convert(t.Elem(), rv.Index(i).Interface())
		if msg != "" {
			return reflect.Value{}, want
		}
		out.Index(i).Set(e)
	}
	return out, ""
}

// scalarText is the text of a scalar: strings as they are, numbers and booleans formatted, null as "".
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	}
	if n, ok := toInt(v); ok {
		return strconv.FormatInt(n, 10), true
	}
	return "", false
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		return int64(x), uint64(x) <= math.MaxInt64
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case float32:
		return toInt(float64(x))
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case bool, string, nil:
		return 0, false
	}
	if n, ok := toInt(v); ok {
		return float64(n), true
	}
	return 0, false
}

// describe writes v for an error message: strings quoted, null as null, lists in flow style.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a mapping"
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		parts := make([]string, rv.Len())
		for i := range rv.Len() {
			parts[i] = describe(rv.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if rv.Kind() == reflect.Map {
		return "a mapping"
	}
	return fmt.Sprint(v)
}

// formatValue writes a key's value as YAML for documentation.
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return `""`
		}
		return x
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	case []int:
		parts := make([]string, len(x))
		for i, n := range x {
			parts[i] = strconv.Itoa(n)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// hint suggests the closest known key or section: ` (did you mean "train.lr"?)`, or "".
func hint(key string) string {
	if best := closest(key, append(Keys(), sections...)); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// closest returns the candidate nearest to name, or "" when none is near enough to be a typo.
// A candidate whose last path element equals name's (for "lr" at the top level: "train.lr") counts.
func closest(name string, candidates []string) string {
	lower := strings.ToLower(name)
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		d := levenshtein(lower, strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(name)/4) {
		return best
	}
	last := lower[strings.LastIndexByte(lower, '.')+1:]
	for _, c := range candidates {
		if strings.ToLower(c[strings.LastIndexByte(c, '.')+1:]) == last {
			return c
		}
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
