package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"runboat.dev/shared/model"
)

// validOpenAPIDoc loads the served OpenAPI document with kin-openapi and checks
// that it is a valid one.
func validOpenAPIDoc(t *testing.T, js []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(js)
	if err != nil {
		t.Fatalf("the OpenAPI document does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	d, err := loadAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	doc := validOpenAPIDoc(t, d.json)
	// The validation of the responses can fail: a status with a count
	// that is not a number, an unknown field, a code not documented.
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code int
		body string
	}{{200, `{"deployed": "3"}`}, {200, `{"deployed": 3, "extra": 1}`}, {201, `{}`}} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		opts := &openapi3filter.Options{IncludeResponseStatus: true}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
			Status:                 tc.code, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(tc.body)), Options: opts,
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err == nil {
			t.Errorf("a status response %d %s passes as valid", tc.code, tc.body)
		}
	}
	// Every operation is on the docs page.
	if len(d.ops) != countOps(doc) {
		t.Errorf("the docs page shows %d operations, the document has %d", len(d.ops), countOps(doc))
	}
}

func countOps(doc *openapi3.T) int {
	n := 0
	for _, p := range doc.Paths.Map() {
		n += len(p.Operations())
	}
	return n
}

// registerBodyDecoders registers the decoders of the non-JSON bodies of the
// API, for the validation of its responses.
var registerBodyDecoders = sync.OnceFunc(func() {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
})

// TestOpenAPIDescribesResponses sends every operation of the document to a
// console on the local cluster, with the codes it can give there, and
// validates each real response against the document: status documented,
// headers and body of the documented schema.
func TestOpenAPIDescribesResponses(t *testing.T) {
	gh := httptest.NewServer(&fakeGitHub{})
	t.Cleanup(gh.Close)
	f := newFixture(t, func(o *Options) { o.GitHubAPIURL = gh.URL })
	registerBodyDecoders()
	d, err := openAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	doc := validOpenAPIDoc(t, d.json)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	admin := testUser + ":" + testPasswd
	branch := f.createBuild(t, spec{repo: "acme/app", branch: "main"})
	pr := f.createBuild(t, spec{repo: "acme/app", branch: "main", pr: 7, commit: sha("pr")})
	failed := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", init: model.InitFailed, reason: "Error (exit code 1)", initLog: "\x1b[31mERROR\x1b[0m: no such module\n"})
	gone := f.createRawBuild(t, spec{repo: "acme/app", branch: "17.0"})
	f.markUndeploying(t, gone.Name())
	bn, pn, fn := "/api/v1/builds/"+branch.Name(), "/api/v1/builds/"+pr.Name(), "/api/v1/builds/"+failed.Name()

	seen := map[string]bool{}
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/api/v1/status", "", 200},
		{"GET", "/api/v1/repos", "", 200},
		{"GET", "/api/v1/builds?repo=acme/app", "", 200},
		{"GET", "/api/v1/builds?pr=seven", "", 400},
		{"GET", "/api/v1/build-events?repo=acme/app", "", 200},
		{"GET", "/api/v1/build-events?pr=0", "", 400},
		{"GET", bn, "", 200},
		{"GET", pn, "", 200},
		{"GET", "/api/v1/builds/nope", "", 404},
		{"GET", fn + "/init-log", "", 200},
		{"GET", bn + "/init-log", "", 404},
		{"GET", bn + "/log", "", 404},
		{"POST", bn + "/start", "", 200},
		{"POST", pn + "/stop", "", 200},
		{"POST", "/api/v1/builds/nope/start", "", 404},
		{"POST", fn + "/reset", "", 200},
		{"POST", fn + "/reset", "", 429},
		{"POST", "/api/v1/builds/" + gone.Name() + "/reset", "", 409},
		{"POST", "/api/v1/builds/trigger/branch?repo=acme/app&branch=main", admin, 200},
		{"POST", "/api/v1/builds/trigger/branch?repo=acme/app&branch=main", "", 401},
		{"POST", "/api/v1/builds/trigger/branch?repo=acme/app&branch=nope", admin, 404},
		{"POST", "/api/v1/builds/trigger/pr?repo=acme/app&pr=7", admin, 200},
		{"POST", "/api/v1/builds/trigger/pr?repo=acme/app&pr=8", admin, 502},
		{"POST", "/api/v1/builds/trigger/pr?repo=acme/app", admin, 400},
		{"DELETE", pn, "", 401},
		{"DELETE", "/api/v1/builds/nope", admin, 404},
		{"DELETE", pn, admin, 200},
		{"DELETE", "/api/v1/builds", admin, 400},
		{"DELETE", "/api/v1/builds?repo=acme/app&branch=16.0", admin, 200},
	} {
		what := tc.method + " " + tc.path
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.auth != "" {
			user, passwd, _ := strings.Cut(tc.auth, ":")
			req.SetBasicAuth(user, passwd)
		}
		code, header, body := f.serve(req)
		if code != tc.want {
			t.Errorf("%s: status %d, want %d; body %s", what, code, tc.want, body)
			continue
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s: not in the OpenAPI document: %v", what, err)
			continue
		}
		seen[strings.ToUpper(route.Method)+" "+route.Path] = true
		in := &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true},
		}
		if tc.want < 400 {
			// The requests that succeed are valid ones.
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("%s: the request is not valid by the document: %v", what, err)
			}
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: code, Header: header,
			Body: io.NopCloser(strings.NewReader(body)), Options: in.Options,
		}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s: the response (%d, %s) is not as documented: %v", what, code, header.Get("Content-Type"), err)
		}
	}
	var missed []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			if !seen[m+" "+p] {
				missed = append(missed, m+" "+p)
			}
		}
	}
	slices.Sort(missed)
	if len(missed) > 0 {
		t.Errorf("operations of the document not exercised: %v", missed)
	}
}

// serve sends a request to the console and returns its response; a
// response that is a stream gives what it sent before it could not stream.
func (f *fixture) serve(req *http.Request) (int, http.Header, string) {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(bufferedWriter{rec}, req)
	return rec.Code, rec.Header(), rec.Body.String()
}

func TestDocsPage(t *testing.T) {
	f := newFixture(t)
	res := f.do(t, http.MethodGet, "/docs", "").want(t, http.StatusOK, "docs")
	for _, want := range []string{"<code>GET /api/v1/build-events</code>", "<code>DELETE /api/v1/builds</code> <span class=\"admin\">admin</span>", "<code>429</code>", `href="/openapi.json"`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("the docs page does not show %q", want)
		}
	}
	js := f.do(t, http.MethodGet, "/openapi.json", "").want(t, http.StatusOK, "openapi.json")
	if js.header.Get("Content-Type") != "application/json" {
		t.Errorf("openapi.json: Content-Type %q", js.header.Get("Content-Type"))
	}
	validOpenAPIDoc(t, []byte(js.body))
}
