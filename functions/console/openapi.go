package console

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// openAPIYAML is the OpenAPI document of the API, served as /openapi.json
// and shown by /docs.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// apiDoc is the OpenAPI document, as JSON and as the /docs page shows it.
type apiDoc struct {
	json        []byte
	title, text string
	ops         []opView
}

// opView is an operation of the API on the /docs page.
type opView struct {
	Method, Path, Summary, Text string
	Admin                       bool
	Params                      []paramView
	Responses                   []responseView
}

type paramView struct {
	Name, In, Type, Text string
	Required             bool
}

type responseView struct{ Code, Text string }

// The parts of an OpenAPI document that /docs shows.
type (
	oaDoc struct {
		Info struct {
			Title       string `json:"title"`
			Description string `json:"description"`
		} `json:"info"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]oaParam    `json:"parameters"`
			Responses  map[string]oaResponse `json:"responses"`
		} `json:"components"`
	}
	oaOp struct {
		Summary     string                `json:"summary"`
		Description string                `json:"description"`
		Parameters  []oaParam             `json:"parameters"`
		Responses   map[string]oaResponse `json:"responses"`
		Security    []map[string][]string `json:"security"`
	}
	oaParam struct {
		Ref         string `json:"$ref"`
		Name        string `json:"name"`
		In          string `json:"in"`
		Description string `json:"description"`
		Required    bool   `json:"required"`
		Schema      struct {
			Type string `json:"type"`
			Ref  string `json:"$ref"`
		} `json:"schema"`
	}
	oaResponse struct {
		Ref         string `json:"$ref"`
		Description string `json:"description"`
	}
)

// methods are the methods of the API, in the order /docs shows them.
var methods = []string{"get", "post", "delete"}

// openAPIDoc is the embedded OpenAPI document, read at its first use: its
// reading takes about 1.5 ms, a tenth of the function's init, for two pages
// few requests ask for. TestOpenAPIDocumentIsValid keeps it readable.
var openAPIDoc = sync.OnceValues(loadAPIDoc)

// loadAPIDoc reads the embedded OpenAPI document.
func loadAPIDoc() (*apiDoc, error) {
	js, err := yaml.YAMLToJSON(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("failed to read the OpenAPI document: %w", err)
	}
	var d oaDoc
	if err := json.Unmarshal(js, &d); err != nil {
		return nil, fmt.Errorf("failed to read the OpenAPI document: %w", err)
	}
	out := &apiDoc{json: js, title: d.Info.Title, text: d.Info.Description}
	paths := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		var shared []oaParam
		if raw, ok := d.Paths[p]["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("OpenAPI document: parameters of %s: %w", p, err)
			}
		}
		for _, m := range methods {
			raw, ok := d.Paths[p][m]
			if !ok {
				continue
			}
			var op oaOp
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("OpenAPI document: %s %s: %w", m, p, err)
			}
			v, err := d.view(strings.ToUpper(m), p, op, shared)
			if err != nil {
				return nil, err
			}
			out.ops = append(out.ops, v)
		}
	}
	return out, nil
}

// view is an operation as /docs shows it, its references resolved.
func (d *oaDoc) view(method, path string, op oaOp, shared []oaParam) (opView, error) {
	v := opView{Method: method, Path: path, Summary: op.Summary, Text: op.Description, Admin: len(op.Security) > 0}
	for _, p := range slices.Concat(shared, op.Parameters) {
		if p.Ref != "" {
			ref, ok := d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			if !ok {
				return opView{}, fmt.Errorf("OpenAPI document: %s %s: unknown parameter %s", method, path, p.Ref)
			}
			p = ref
		}
		typ := p.Schema.Type
		if typ == "" && p.Schema.Ref != "" {
			typ = p.Schema.Ref[strings.LastIndex(p.Schema.Ref, "/")+1:]
		}
		v.Params = append(v.Params, paramView{Name: p.Name, In: p.In, Type: typ, Text: p.Description, Required: p.Required})
	}
	codes := make([]string, 0, len(op.Responses))
	for c := range op.Responses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		r := op.Responses[c]
		if r.Ref != "" {
			ref, ok := d.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]
			if !ok {
				return opView{}, fmt.Errorf("OpenAPI document: %s %s: unknown response %s", method, path, r.Ref)
			}
			r = ref
		}
		v.Responses = append(v.Responses, responseView{Code: c, Text: r.Description})
	}
	return v, nil
}

// openAPI serves the OpenAPI document.
func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := openAPIDoc()
	if err != nil {
		fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc.json) // the client is gone if this fails
}

// docs is the API's documentation page, made from the OpenAPI document.
func (h *Handler) docs(w http.ResponseWriter, r *http.Request) {
	doc, err := openAPIDoc()
	if err != nil {
		h.pageFailed(w, r, err)
		return
	}
	d := h.data(doc.title + " API")
	d.Heading, d.Text, d.Ops = d.Title, doc.text, doc.ops
	h.render(w, r, http.StatusOK, h.pages.docs, d)
}
