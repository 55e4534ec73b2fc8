package configs

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// ErrUnknownKey is wrapped by the *FieldError reported for a key the config does not have.
var ErrUnknownKey = errors.New("configs: unknown key")

// SourceSet is the FieldError.File of a value that came from a --set entry.
const SourceSet = "--set"

// FieldError reports one bad key or value of a config, and where it came from.
// Load and Validate may return several, joined with errors.Join; errors.As finds the first.
type FieldError struct {
	Field   string   // dot key, e.g. "train.lr" (for an unknown --set entry, the key as written)
	File    string   // source of the value: a YAML file path, SourceSet, or "$MAMI_..." for the environment; "" when unknown
	Line    int      // 1-based line in File, 0 when not applicable
	Value   any      // the offending value, when there is one
	Allowed []string // the allowed values of an enumerated key
	Msg     string   // what is wrong and what is allowed: "must be > 0, got -1"
	Err     error    // ErrUnknownKey for unknown keys, otherwise nil

	cause string // another key whose source to name when Field's value is a default
}

// Error formats the error with its source first:
//
//	configs/foo.yaml:3: train.lr: must be > 0, got -1
//	configs/foo.yaml:3: unknown key "train.lrr" (did you mean "train.lr"?)
//	--set train.lrr: unknown key (did you mean "train.lr"?)
//	$MAMI_TRAIN_LR: train.lr: want a number, got "fast"
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File == SourceSet:
		b.WriteString(SourceSet + " ")
	case e.File != "":
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
		if errors.Is(e.Err, ErrUnknownKey) && e.Field != "" && !strings.HasPrefix(e.File, "$") {
			b.WriteString("unknown key " + strconv.Quote(e.Field) + strings.TrimPrefix(e.Msg, "unknown key"))
			return b.String()
		}
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks every key and the constraints between keys. It returns nil or the *FieldError
// of each problem, joined with errors.Join.
func (c *Config) Validate() error {
	return joinFieldErrors(c.validate())
}

func joinFieldErrors(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

func (c *Config) validate() []*FieldError {
	var errs []*FieldError
	add := func(key string, value any, msg string, cause ...string) {
		e := &FieldError{Field: key, Value: value, Allowed: slices.Clone(fieldMap[key].spec.allowed), Msg: msg}
		if len(cause) > 0 {
			e.cause = cause[0]
		}
		errs = append(errs, e)
	}
	root := reflect.ValueOf(c).Elem()
	for _, f := range fields {
		v := root.FieldByIndex(f.index).Interface()
		if msg := f.check(v); msg != "" {
			add(f.key, v, msg)
		}
	}
	if c.Model.Head == "double_softmax" && c.Model.Fusion != "concat" {
		add("model.head", c.Model.Head, fmt.Sprintf("double_softmax needs model.fusion concat, got fusion %q", c.Model.Fusion), "model.fusion")
	}
	if s := c.Data.ValFraction + c.Data.TestFraction; s >= 1 {
		add("data.val_fraction", c.Data.ValFraction, fmt.Sprintf("data.val_fraction + data.test_fraction must be < 1, got %v + %v",
			c.Data.ValFraction, c.Data.TestFraction), "data.test_fraction")
	}
	if c.Data.Dataset == "mami" {
		if c.Data.Path == "" {
			add("data.path", c.Data.Path, "must be set when data.dataset is mami (the folder with training.csv)", "data.dataset")
		}
		if c.Data.Features == "" {
			add("data.features", c.Data.Features, "must be set when data.dataset is mami (a .safetensors or .npy feature file)", "data.dataset")
		}
	}
	if c.Train.EarlyStop.Metric != "" && c.Train.EarlyStop.Patience < 1 {
		add("train.early_stop.patience", c.Train.EarlyStop.Patience,
			fmt.Sprintf("must be >= 1 when train.early_stop.metric is set, got %d", c.Train.EarlyStop.Patience), "train.early_stop.metric")
	}
	if c.Tracking.Mode == "online" && c.Tracking.BaseURL == "" {
		add("tracking.base_url", c.Tracking.BaseURL, "must be set when tracking.mode is online", "tracking.mode")
	}
	return errs
}

func nonEmpty(v any) string {
	if v.(string) == "" {
		return "must not be empty"
	}
	return ""
}

// checkID accepts names safe as a directory name and a command-line argument.
func checkID(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 128 {
		return fmt.Sprintf("must be at most 128 characters, got %d", len(s))
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return fmt.Sprintf("must contain only letters, digits, \"_\", \".\" and \"-\", got %q", s)
		}
	}
	if s[0] == '.' || s[0] == '-' {
		return fmt.Sprintf("must not start with \".\" or \"-\", got %q", s)
	}
	return ""
}

func checkRunID(v any) string   { return checkID(v.(string)) }
func checkSweepID(v any) string { return checkID(v.(string)) }

func checkTags(v any) string {
	if slices.Contains(v.([]string), "") {
		return "tags must not be empty, got " + describe(v)
	}
	return ""
}

func checkURL(v any) string {
	s := v.(string)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("must be an http or https URL, got %q", s)
	}
	return ""
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func positive(v any) string {
	if x := v.(float64); !finite(x) || x <= 0 {
		return fmt.Sprintf("must be > 0, got %v", x)
	}
	return ""
}

func nonNegative(v any) string {
	if x := v.(float64); !finite(x) || x < 0 {
		return fmt.Sprintf("must be >= 0, got %v", x)
	}
	return ""
}

func openUnit(v any) string {
	if x := v.(float64); !(x > 0 && x < 1) {
		return fmt.Sprintf("must be in (0, 1), got %v", x)
	}
	return ""
}

func halfOpenUnit(v any) string {
	if x := v.(float64); !(x >= 0 && x < 1) {
		return fmt.Sprintf("must be in [0, 1), got %v", x)
	}
	return ""
}

func minInt(lo int) func(any) string {
	return func(v any) string {
		if n := reflect.ValueOf(v).Int(); n < int64(lo) {
			return fmt.Sprintf("must be >= %d, got %d", lo, n)
		}
		return ""
	}
}

func positiveInts(v any) string {
	for _, n := range v.([]int) {
		if n <= 0 {
			return "sizes must be > 0, got " + describe(v)
		}
	}
	return ""
}
