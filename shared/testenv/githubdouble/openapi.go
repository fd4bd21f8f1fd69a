package githubdouble

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// openapiJSON is GitHub's description of the operations the project uses,
// trimmed from @octokit/openapi by trim.go.
//
//go:generate go run trim.go octokit-openapi-23.0.2.tgz
//go:embed testdata/openapi.json
var openapiJSON []byte

// description is the part of an OpenAPI document the double reads.
type description struct {
	Paths map[string]map[string]*operation `json:"paths"`
}

type operation struct {
	OperationID string      `json:"operationId"`
	Parameters  []parameter `json:"parameters"`
	RequestBody *struct {
		Required bool `json:"required"`
		Content  map[string]struct {
			Schema *schema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct {
			Examples map[string]struct {
				Value json.RawMessage `json:"value"`
			} `json:"examples"`
		} `json:"content"`
	} `json:"responses"`
}

type parameter struct {
	Name     string  `json:"name"`
	In       string  `json:"in"`
	Required bool    `json:"required"`
	Schema   *schema `json:"schema"`
}

type schema struct {
	Type       string             `json:"type"`
	Nullable   bool               `json:"nullable"`
	Enum       []any              `json:"enum"`
	Properties map[string]*schema `json:"properties"`
	Required   []string           `json:"required"`
}

// route is one operation and the pattern of its path.
type route struct {
	method, template string
	re               *regexp.Regexp
	names            []string
	op               *operation
}

// loadRoutes reads the description.
func loadRoutes() ([]route, error) {
	var d description
	if err := json.Unmarshal(openapiJSON, &d); err != nil {
		return nil, fmt.Errorf("failed to read GitHub's description: %w", err)
	}
	var out []route
	for tmpl, ops := range d.Paths {
		var names []string
		segs := strings.Split(tmpl, "/")
		for i, seg := range segs {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				name := strings.Trim(seg, "{}")
				names = append(names, name)
				segs[i] = "([^/]+)"
				if name == "ref" && i == len(segs)-1 {
					// A Git reference, heads/<branch>, holds slashes.
					segs[i] = "(.+)"
				}
			} else {
				segs[i] = regexp.QuoteMeta(seg)
			}
		}
		re := regexp.MustCompile("^" + strings.Join(segs, "/") + "$")
		for method, op := range ops {
			out = append(out, route{method: strings.ToUpper(method), template: tmpl, re: re, names: names, op: op})
		}
	}
	// The most specific first (fewer parameters).
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].names) != len(out[j].names) {
			return len(out[i].names) < len(out[j].names)
		}
		return out[i].template < out[j].template
	})
	return out, nil
}

// match finds the operation of a request: its route and path parameters,
// or why the description does not allow it.
func match(routes []route, method, path string) (*route, map[string]string, error) {
	pathFound := false
	for i := range routes {
		r := &routes[i]
		m := r.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		pathFound = true
		if r.method != method {
			continue
		}
		params := map[string]string{}
		for k, n := range r.names {
			v, err := url.PathUnescape(m[k+1])
			if err != nil {
				return nil, nil, fmt.Errorf("path parameter %s: %w", n, err)
			}
			params[n] = v
		}
		return r, params, nil
	}
	if pathFound {
		return nil, nil, fmt.Errorf("method %s not allowed on %s", method, path)
	}
	return nil, nil, fmt.Errorf("no operation at %s", path)
}

// checkParams checks the path and query parameters of a request.
func (r *route) checkParams(path map[string]string, query url.Values) []string {
	var problems []string
	declared := map[string]parameter{}
	for _, p := range r.op.Parameters {
		declared[p.In+":"+p.Name] = p
		if p.In == "query" && p.Required && !query.Has(p.Name) {
			problems = append(problems, "missing required query parameter "+p.Name)
		}
	}
	for name, v := range path {
		if p, ok := declared["path:"+name]; ok {
			problems = append(problems, checkValue("path parameter "+name, p.Schema, v)...)
		}
	}
	for name, vs := range query {
		p, ok := declared["query:"+name]
		if !ok {
			problems = append(problems, "unknown query parameter "+name)
			continue
		}
		for _, v := range vs {
			problems = append(problems, checkValue("query parameter "+name, p.Schema, v)...)
		}
	}
	return problems
}

// checkValue checks a parameter's text against its schema.
func checkValue(what string, s *schema, v string) []string {
	if s == nil {
		return nil
	}
	var typed any = v
	switch s.Type {
	case "integer":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return []string{fmt.Sprintf("%s: %q is not an integer", what, v)}
		}
		typed = float64(n)
	case "boolean":
		if v != "true" && v != "false" {
			return []string{fmt.Sprintf("%s: %q is not a boolean", what, v)}
		}
		typed = v == "true"
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, typed) {
		return []string{fmt.Sprintf("%s: %q is not one of %v", what, v, s.Enum)}
	}
	return nil
}

// checkBody checks a JSON body against the operation's request schema:
// known fields only, required ones present, types and enum values.
func (r *route) checkBody(contentType string, body []byte) []string {
	rb := r.op.RequestBody
	if rb == nil {
		if len(strings.TrimSpace(string(body))) > 0 {
			return []string{"a body where the operation takes none"}
		}
		return nil
	}
	// An optional body sent as JSON null is no body (ghinstallation asks
	// for an installation token so; GitHub takes it).
	if !rb.Required && strings.TrimSpace(string(body)) == "null" {
		return nil
	}
	if len(body) == 0 {
		if rb.Required {
			return []string{"missing required body"}
		}
		return nil
	}
	media, ok := rb.Content["application/json"]
	if !ok || media.Schema == nil {
		return []string{"the operation takes no JSON body"}
	}
	if !strings.HasPrefix(contentType, "application/json") {
		return []string{fmt.Sprintf("content type %q, want application/json", contentType)}
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []string{"body is not JSON: " + err.Error()}
	}
	return checkJSON("body", media.Schema, v)
}

func checkJSON(where string, s *schema, v any) []string {
	if v == nil {
		if s.Nullable {
			return nil
		}
		return []string{where + ": null not allowed"}
	}
	var problems []string
	switch s.Type {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return []string{where + ": want an object"}
		}
		for _, req := range s.Required {
			if _, ok := obj[req]; !ok {
				problems = append(problems, where+": missing required field "+req)
			}
		}
		for k, x := range obj {
			ps, ok := s.Properties[k]
			if !ok {
				if s.Properties != nil {
					problems = append(problems, where+": unknown field "+k)
				}
				continue
			}
			problems = append(problems, checkJSON(where+"."+k, ps, x)...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			problems = append(problems, where+": want a string")
		}
	case "integer", "number":
		if _, ok := v.(float64); !ok {
			problems = append(problems, where+": want a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			problems = append(problems, where+": want a boolean")
		}
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, v) {
		problems = append(problems, fmt.Sprintf("%s: %v is not one of %v", where, v, s.Enum))
	}
	return problems
}

// example is the default example of the operation's answer with code.
func (r *route) example(code string) (json.RawMessage, error) {
	resp, ok := r.op.Responses[code]
	if !ok {
		return nil, fmt.Errorf("%s %s has no answer %s in GitHub's description", r.method, r.template, code)
	}
	ex, ok := resp.Content["application/json"].Examples["default"]
	if !ok {
		return nil, fmt.Errorf("%s %s has no example of its answer %s", r.method, r.template, code)
	}
	return ex.Value, nil
}
