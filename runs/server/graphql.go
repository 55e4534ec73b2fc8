package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// Resolver answers one root field of a GraphQL operation. args are the field's arguments with the
// variables substituted. The result is a tree of map[string]any, []any, []map[string]any, scalars and
// Field values; the operation's selection set picks from it (unknown fields read as null).
type Resolver func(ctx context.Context, r *http.Request, args map[string]any) (any, error)

// Field is a value in a resolver's result that takes arguments (like bucket(name: ...)); it is called
// only when the query selects it.
type Field func(args map[string]any) (any, error)

// HandleGraphQL adds (or replaces) a root field, for features such as sweeps that live in other packages.
func (s *Server) HandleGraphQL(field string, r Resolver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra[field] = r
}

type gqlRequest struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
}

type gqlError struct {
	Message string `json:"message"`
	Path    []any  `json:"path,omitempty"`
}

// maxQueryTokens bounds the work of parsing one query.
const maxQueryTokens = 20000

func (s *Server) handleGraphQL(w http.ResponseWriter, r *http.Request) {
	var req gqlRequest
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		writeGraphQLErrors(w, http.StatusBadRequest, fmt.Sprintf("request body: %v", err))
		return
	}
	req.Variables = normalizeNumbers(req.Variables).(map[string]any)
	data, err := s.execute(r, req)
	if err != nil {
		s.log.Debug("graphql error", "op", req.OperationName, "err", err)
		writeGraphQLErrors(w, http.StatusOK, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func writeGraphQLErrors(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"data": nil, "errors": []gqlError{{Message: msg}}})
}

// normalizeNumbers turns json.Number into int64 where integral, float64 otherwise.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case nil:
		return map[string]any{}
	case map[string]any:
		for k, e := range x {
			if e == nil {
				continue
			}
			x[k] = normalizeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			if e != nil {
				x[i] = normalizeNumbers(e)
			}
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

func (s *Server) execute(r *http.Request, req gqlRequest) (any, error) {
	if strings.TrimSpace(req.Query) == "" {
		return nil, errors.New("missing query")
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Name: "query", Input: req.Query}, maxQueryTokens)
	if err != nil {
		return nil, fmt.Errorf("parse query: %w", err)
	}
	op, err := pickOperation(doc, req.OperationName)
	if err != nil {
		return nil, err
	}
	if op.Operation == ast.Subscription {
		return nil, errors.New("subscriptions are not supported")
	}
	ex := &executor{doc: doc, vars: req.Variables}
	out := map[string]any{}
	for _, f := range ex.fields(op.SelectionSet, map[string]bool{}) {
		key := f.Alias
		if key == "" {
			key = f.Name
		}
		if f.Name == "__typename" {
			out[key] = map[ast.Operation]string{ast.Query: "Query", ast.Mutation: "Mutation"}[op.Operation]
			continue
		}
		res, err := s.resolver(op.Operation, f.Name)
		if err != nil {
			return nil, err
		}
		args, err := ex.args(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		v, err := res(r.Context(), r, args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		if out[key], err = ex.project(f.SelectionSet, v, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return out, nil
}

func pickOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, error) {
	if name != "" {
		op := doc.Operations.ForName(name)
		if op == nil {
			return nil, fmt.Errorf("unknown operation %q", name)
		}
		return op, nil
	}
	switch len(doc.Operations) {
	case 0:
		return nil, errors.New("no operation in query")
	case 1:
		return doc.Operations[0], nil
	}
	return nil, errors.New("operationName is required when the query holds several operations")
}

type executor struct {
	doc  *ast.QueryDocument
	vars map[string]any
}

// maxDepth bounds nesting of selections (fragments included).
const maxDepth = 32

// fields flattens a selection set: fragment spreads and inline fragments are expanded in place.
func (ex *executor) fields(set ast.SelectionSet, seen map[string]bool) []*ast.Field {
	var out []*ast.Field
	for _, sel := range set {
		switch x := sel.(type) {
		case *ast.Field:
			if ex.skipped(x.Directives) {
				continue
			}
			out = append(out, x)
		case *ast.InlineFragment:
			if !ex.skipped(x.Directives) {
				out = append(out, ex.fields(x.SelectionSet, seen)...)
			}
		case *ast.FragmentSpread:
			if seen[x.Name] || ex.skipped(x.Directives) {
				continue
			}
			if def := ex.doc.Fragments.ForName(x.Name); def != nil {
				seen[x.Name] = true
				out = append(out, ex.fields(def.SelectionSet, seen)...)
				delete(seen, x.Name)
			}
		}
	}
	return out
}

// skipped evaluates @skip(if:) and @include(if:).
func (ex *executor) skipped(ds ast.DirectiveList) bool {
	for _, d := range ds {
		if d.Name != "skip" && d.Name != "include" {
			continue
		}
		v, _ := d.ArgumentMap(ex.vars)["if"].(bool)
		if d.Name == "skip" && v || d.Name == "include" && !v {
			return true
		}
	}
	return false
}

func (ex *executor) args(f *ast.Field) (out map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil { // gqlparser panics on value kinds it does not know
			err = fmt.Errorf("bad argument: %v", p)
		}
	}()
	out = map[string]any{}
	for _, a := range f.Arguments {
		v, err := a.Value.Value(ex.vars)
		if err != nil {
			return nil, fmt.Errorf("argument %s: %w", a.Name, err)
		}
		out[a.Name] = v
	}
	return out, nil
}

// project picks the selected fields out of a resolved value.
func (ex *executor) project(set ast.SelectionSet, v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("query nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			p, err := ex.project(set, e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			p, err := ex.project(set, e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case map[string]any:
		if len(set) == 0 {
			return x, nil // a JSON scalar
		}
		out := map[string]any{}
		for _, f := range ex.fields(set, map[string]bool{}) {
			key := f.Alias
			if key == "" {
				key = f.Name
			}
			val := x[f.Name]
			if fn, ok := val.(Field); ok {
				args, err := ex.args(f)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", f.Name, err)
				}
				if val, err = fn(args); err != nil {
					return nil, fmt.Errorf("%s: %w", f.Name, err)
				}
			}
			p, err := ex.project(f.SelectionSet, val, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			out[key] = p
		}
		return out, nil
	}
	return v, nil
}
