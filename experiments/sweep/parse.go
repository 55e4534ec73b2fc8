package sweep

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mami-lab/mami/configs"
)

// Error reports one problem of a sweep file, with its position:
//
//	configs/sweeps/x.yaml:7: parameters.train.lrr: unknown config key (did you mean train.lr?)
type Error struct {
	File  string // path of the sweep file
	Line  int    // 1-based line, 0 when unknown
	Field string // dotted position in the file, e.g. "parameters.train.lr.min"
	Msg   string
}

// Error formats the error as "file:line: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// forbiddenKeys are config keys the engine sets itself.
var forbiddenKeys = map[string]string{
	"run.id":       "the sweep gives every trial its own run id",
	"run.sweep_id": "the sweep sets it",
	"workdir":      "all trials of a sweep share one work directory",
}

// Load reads and parses the sweep file at path.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sweep file: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a sweep file in W&B's format; name labels errors. Every problem found is reported as an
// *Error naming the file, line and field; several are joined with errors.Join.
func Parse(name string, data []byte) (*Spec, error) {
	p := &parser{file: name, spec: &Spec{File: name, Source: slices.Clone(data), Metric: Metric{Goal: GoalMinimize}}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: name, Line: yamlErrLine(err), Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: name, Msg: "empty sweep file"}
	}
	p.top(doc.Content[0])
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return p.spec, nil
}

type parser struct {
	file string
	spec *Spec
	errs []error
	seen map[string]int // parameter key -> line
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

var topKeys = []string{"method", "metric", "parameters", "early_terminate", "run_cap", "seed", "command", "program",
	"name", "description", "project", "entity", "controller"}

func (p *parser) top(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "", "a sweep file is a YAML mapping with method, metric and parameters")
		return
	}
	var params *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "method":
			s, ok := p.str(v, "method")
			if ok && s != MethodGrid && s != MethodRandom && s != MethodBayes {
				p.errf(v, "method", "must be grid, random or bayes, got %q", s)
			}
			p.spec.Method = s
		case "metric":
			p.metric(v)
		case "parameters":
			params = v
		case "early_terminate":
			p.earlyTerminate(v)
		case "run_cap":
			if c, ok := p.integer(v, "run_cap"); ok {
				if c < 1 {
					p.errf(v, "run_cap", "must be at least 1, got %d", c)
				}
				p.spec.RunCap = int(c)
			}
		case "seed":
			if s, ok := p.integer(v, "seed"); ok {
				p.spec.Seed = s
			}
		case "command":
			if v.Kind != yaml.SequenceNode {
				p.errf(v, "command", "want a list of strings")
				continue
			}
			for _, e := range v.Content {
				s, _ := p.str(e, "command")
				p.spec.Command = append(p.spec.Command, s)
			}
		case "program":
			p.spec.Program, _ = p.str(v, "program")
		case "name":
			p.spec.Name, _ = p.str(v, "name")
		case "description", "project", "entity", "controller":
			// Tolerated for W&B compatibility; mami does not use them.
		default:
			p.errf(k, k.Value, "unknown sweep key%s", suggest(k.Value, topKeys))
		}
	}
	if p.spec.Method == "" {
		p.errf(n, "method", "missing (grid, random or bayes)")
	}
	if params == nil {
		p.errf(n, "parameters", "missing: a sweep needs at least one parameter")
	} else {
		p.seen = map[string]int{}
		p.params(params, "", "parameters")
		if len(p.spec.Params) == 0 && len(p.errs) == 0 {
			p.errf(params, "parameters", "empty: a sweep needs at least one parameter")
		}
	}
	if p.spec.Metric.Name == "" && (p.spec.Method == MethodBayes || p.spec.EarlyTerminate != nil) {
		p.errf(n, "metric", "missing: bayes and early_terminate need metric.name")
	}
	if p.spec.Method == MethodGrid && len(p.errs) == 0 {
		size := 1
		for _, par := range p.spec.Params {
			vs, err := par.gridValues()
			if err != nil {
				p.errs = append(p.errs, &Error{File: p.file, Line: par.Line, Field: "parameters." + par.Key, Msg: err.Error()})
				continue
			}
			size *= len(vs)
			if size > maxGrid {
				p.errf(params, "parameters", "the grid has more than %d points", maxGrid)
				break
			}
		}
	}
	if p.spec.Name == "" {
		base := filepath.Base(p.file)
		p.spec.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
}

func (p *parser) metric(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "metric", "want a mapping with name and goal")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			p.spec.Metric.Name, _ = p.str(v, "metric.name")
		case "goal":
			g, ok := p.str(v, "metric.goal")
			if ok && g != GoalMinimize && g != GoalMaximize {
				p.errf(v, "metric.goal", "must be minimize or maximize, got %q", g)
			}
			p.spec.Metric.Goal = g
		case "target":
			if t, ok := p.number(v, "metric.target"); ok {
				p.spec.Metric.Target, p.spec.Metric.HasTarget = t, true
			}
		case "impute", "imputewhileRunning":
			// W&B options for runs that never log the metric; mami treats those runs as worst.
		default:
			p.errf(k, "metric."+k.Value, "unknown metric key%s", suggest(k.Value, []string{"name", "goal", "target"}))
		}
	}
	if p.spec.Metric.Name == "" {
		p.errf(n, "metric.name", "missing")
	}
}

func (p *parser) earlyTerminate(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "early_terminate", "want a mapping with type, min_iter (or max_iter and s) and eta")
		return
	}
	h := &Hyperband{Eta: 3}
	typ := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := "early_terminate." + k.Value
		switch k.Value {
		case "type":
			typ, _ = p.str(v, f)
		case "min_iter", "max_iter", "s":
			x, ok := p.integer(v, f)
			if ok && x < 1 {
				p.errf(v, f, "must be at least 1, got %d", x)
			}
			switch k.Value {
			case "min_iter":
				h.MinIter = int(x)
			case "max_iter":
				h.MaxIter = int(x)
			default:
				h.S = int(x)
			}
		case "eta":
			if e, ok := p.number(v, f); ok {
				if !(e > 1) {
					p.errf(v, f, "must be > 1, got %g", e)
				}
				h.Eta = e
			}
		default:
			p.errf(k, f, "unknown key%s", suggest(k.Value, []string{"type", "min_iter", "max_iter", "s", "eta"}))
		}
	}
	switch {
	case typ != "hyperband":
		p.errf(n, "early_terminate.type", "must be hyperband, got %q", typ)
	case h.MinIter == 0 && h.MaxIter == 0:
		p.errf(n, "early_terminate", "needs min_iter, or max_iter and s")
	case h.MinIter > 0 && h.MaxIter > 0:
		p.errf(n, "early_terminate", "give min_iter or max_iter, not both")
	case h.MaxIter > 0 && h.S == 0:
		p.errf(n, "early_terminate.s", "missing: max_iter needs s (the number of rungs)")
	}
	p.spec.EarlyTerminate = h
}

// params walks a parameters mapping; prefix is the dot path of an enclosing nested block.
func (p *parser) params(n *yaml.Node, prefix, field string) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping from config keys to parameter specs")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		f := field + "." + k.Value
		if v.Kind == yaml.MappingNode && mapGet(v, "parameters") != nil {
			if len(v.Content) != 2 {
				p.errf(k, f, "a nested block holds only parameters:")
			}
			p.params(mapGet(v, "parameters"), key+".", f+".parameters")
			continue
		}
		p.param(k, v, key, f)
	}
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

var paramKeys = []string{"value", "values", "probabilities", "distribution", "min", "max", "mu", "sigma", "q", "parameters"}

func (p *parser) param(kn, n *yaml.Node, key, field string) {
	info, known := keyInfo(key)
	if !known {
		p.errf(kn, field, "unknown config key%s", suggest(key, configs.Keys()))
		return
	}
	if why, bad := forbiddenKeys[key]; bad {
		p.errf(kn, field, "%s cannot be swept: %s", key, why)
		return
	}
	if first, dup := p.seen[key]; dup {
		p.errf(kn, field, "%s given twice (first at line %d)", key, first)
		return
	}
	p.seen[key] = kn.Line
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping with value, values or distribution")
		return
	}
	par := &Param{Key: key, Line: kn.Line, Type: info.Type, Mu: 0, Sigma: 1}
	has := map[string]*yaml.Node{}
	nerrKeys := len(p.errs)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(paramKeys, k.Value) {
			p.errf(k, field+"."+k.Value, "unknown parameter key%s", suggest(k.Value, paramKeys))
			continue
		}
		has[k.Value] = v
	}
	nerr := len(p.errs)
	if len(p.errs) > nerrKeys {
		return
	}
	num := func(name string, dst *float64) {
		if v := has[name]; v != nil {
			if x, ok := p.number(v, field+"."+name); ok {
				*dst = x
			}
		}
	}
	num("min", &par.Min)
	num("max", &par.Max)
	num("mu", &par.Mu)
	num("sigma", &par.Sigma)
	num("q", &par.Q)
	if v := has["distribution"]; v != nil {
		d, ok := p.str(v, field+".distribution")
		if ok && !slices.Contains(Distributions(), d) {
			p.errf(v, field+".distribution", "unknown distribution %q%s", d, suggest(d, Distributions()))
			return
		}
		par.Distribution = d
	}
	switch {
	case has["value"] != nil:
		var x any
		if err := has["value"].Decode(&x); err != nil {
			p.errf(has["value"], field+".value", "%v", err)
		}
		par.Values = []any{x}
		if par.Distribution == "" {
			par.Distribution = DistConstant
		}
	case has["values"] != nil:
		vs := has["values"]
		if vs.Kind != yaml.SequenceNode || len(vs.Content) == 0 {
			p.errf(vs, field+".values", "want a non-empty list")
			return
		}
		for _, e := range vs.Content {
			var x any
			if err := e.Decode(&x); err != nil {
				p.errf(e, field+".values", "%v", err)
				continue
			}
			par.Values = append(par.Values, x)
		}
		if par.Distribution == "" {
			par.Distribution = DistCategorical
		}
	case par.Distribution == "" && has["min"] != nil && has["max"] != nil:
		par.Distribution = DistUniform
		if isInt(has["min"]) && isInt(has["max"]) {
			par.Distribution = DistIntUniform
		}
	case par.Distribution == "":
		p.errf(n, field, "needs value, values, min and max, or a distribution")
		return
	}
	if len(p.errs) > nerr {
		return
	}
	p.checkParam(par, n, has, field)
	if len(p.errs) == nerr {
		p.spec.Params = append(p.spec.Params, par)
	}
}

func isInt(n *yaml.Node) bool {
	_, err := strconv.ParseInt(n.Value, 0, 64)
	return n.Kind == yaml.ScalarNode && err == nil
}

// checkParam checks a parameter's fields against its distribution and the config key's type and range.
func (p *parser) checkParam(par *Param, n *yaml.Node, has map[string]*yaml.Node, field string) {
	at := func(name string) *yaml.Node {
		if v := has[name]; v != nil {
			return v
		}
		return n
	}
	need := func(names ...string) bool {
		ok := true
		for _, name := range names {
			if has[name] == nil {
				p.errf(n, field+"."+name, "missing: distribution %s needs %s", par.Distribution, strings.Join(names, ", "))
				ok = false
				break
			}
		}
		return ok
	}
	// the value the config key gets, checked by the config itself
	check := func(v any, node *yaml.Node, f string) {
		c := configs.Default()
		if err := c.Set(par.Key, v); err != nil {
			msg := err.Error()
			var fe *configs.FieldError
			if errors.As(err, &fe) && fe.Msg != "" {
				msg = fe.Msg
			}
			p.errf(node, f, "%s", msg)
		}
	}
	switch par.Distribution {
	case DistConstant:
		if len(par.Values) != 1 {
			p.errf(n, field, "distribution constant needs exactly one value")
			return
		}
		check(par.Values[0], at("value"), field+".value")
		return
	case DistCategorical:
		if len(par.Values) == 0 {
			p.errf(n, field+".values", "missing: distribution categorical needs values")
			return
		}
		vs := has["values"]
		for i, v := range par.Values {
			node := n
			if vs != nil && i < len(vs.Content) {
				node = vs.Content[i]
			}
			check(v, node, fmt.Sprintf("%s.values[%d]", field, i))
		}
		if pr := has["probabilities"]; pr != nil {
			p.probabilities(par, pr, field+".probabilities")
		}
		return
	}
	if has["probabilities"] != nil {
		p.errf(has["probabilities"], field+".probabilities", "only categorical parameters (values) take probabilities")
	}
	if par.Type != "number" && par.Type != "integer" {
		p.errf(at("distribution"), field, "distribution %s draws numbers but %s is a %s key", par.Distribution, par.Key, par.Type)
		return
	}
	quantised := strings.HasPrefix(par.Distribution, "q_")
	if quantised && !(par.Q > 0) {
		if has["q"] == nil {
			par.Q = 1 // W&B's default
		} else {
			p.errf(at("q"), field+".q", "must be > 0, got %g", par.Q)
			return
		}
	}
	switch par.Distribution {
	case DistNormal, DistQNormal, DistLogNormal, DistQLogNormal:
		if !(par.Sigma > 0) {
			p.errf(at("sigma"), field+".sigma", "must be > 0, got %g", par.Sigma)
			return
		}
	default:
		if !need("min", "max") {
			return
		}
		if !(par.Min < par.Max) {
			p.errf(at("max"), field+".max", "must be greater than min (%g), got %g", par.Min, par.Max)
			return
		}
		switch par.Distribution {
		case DistLogUniformValues, DistQLogUniformValues, DistInvLogUniformValues:
			if !(par.Min > 0) {
				p.errf(at("min"), field+".min", "must be > 0 for %s, got %g", par.Distribution, par.Min)
				return
			}
		case DistLogUniform, DistQLogUniform, DistInvLogUniform:
			if par.Max > 700 || par.Min < -700 {
				p.errf(at("max"), field, "%s takes natural logarithms as min and max; did you mean %s_values?", par.Distribution, par.Distribution)
				return
			}
		}
		lo, hi := par.bounds()
		check(convert(par, lo), at("min"), field+".min")
		check(convert(par, hi), at("max"), field+".max")
	}
	if par.Type == "integer" && par.Distribution != DistIntUniform && !(quantised && par.Q == math.Trunc(par.Q)) {
		p.errf(at("distribution"), field, "%s is an integer key: use int_uniform, values, or a q_ distribution with an integer q", par.Key)
	}
	if par.Distribution == DistIntUniform && (par.Min != math.Trunc(par.Min) || par.Max != math.Trunc(par.Max)) {
		p.errf(at("min"), field, "int_uniform needs integer min and max, got %g and %g", par.Min, par.Max)
	}
}

func (p *parser) probabilities(par *Param, n *yaml.Node, field string) {
	if n.Kind != yaml.SequenceNode || len(n.Content) != len(par.Values) {
		p.errf(n, field, "want a list of %d numbers, one per value", len(par.Values))
		return
	}
	sum := 0.0
	for _, e := range n.Content {
		x, ok := p.number(e, field)
		if !ok {
			return
		}
		if x < 0 {
			p.errf(e, field, "must not be negative, got %g", x)
			return
		}
		par.Probs = append(par.Probs, x)
		sum += x
	}
	if math.Abs(sum-1) > 1e-6 {
		p.errf(n, field, "must sum to 1, got %g", sum)
		par.Probs = nil
	}
}

func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errf(n, field, "want a string")
		return "", false
	}
	return n.Value, true
}

func (p *parser) number(n *yaml.Node, field string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		var x float64
		if err := n.Decode(&x); err == nil && !math.IsNaN(x) && !math.IsInf(x, 0) {
			return x, true
		}
	}
	p.errf(n, field, "want a finite number, got %q", n.Value)
	return 0, false
}

func (p *parser) integer(n *yaml.Node, field string) (int64, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		var x int64
		if err := n.Decode(&x); err == nil {
			return x, true
		}
	}
	p.errf(n, field, "want an integer, got %q", n.Value)
	return 0, false
}

func keyInfo(key string) (configs.KeyInfo, bool) {
	for _, k := range configs.Reference() {
		if k.Key == key {
			return k, true
		}
	}
	return configs.KeyInfo{}, false
}

func yamlErrLine(err error) int {
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		j := i + 5
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(s[i+5 : j])
		return n
	}
	return 0
}

// suggest returns " (did you mean X?)" for the candidate closest to s, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(s)/3) {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the optimal-string-alignment distance: insertions, deletions, substitutions and
// transpositions of adjacent bytes each cost 1.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
