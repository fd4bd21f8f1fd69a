// Package githubdouble is a GitHub double for tests: an HTTP server that
// answers the REST API operations the project uses (branches, pull
// requests, a Git ref, commit statuses) from a state the test sets, and
// checks every request against GitHub's own OpenAPI description (from the
// npm package @octokit/openapi, trimmed by trim.go into testdata): a path,
// method, parameter, body field or enum value the description does not
// allow fails the test. Answers are the description's own examples, with
// the test's names and commits put in; lists are paged with Link headers
// and carry ETags, and a request whose If-None-Match holds the current one
// gets a 304, as GitHub's do.
package githubdouble

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is a request the double received.
type Request struct {
	Method, Path string
	// Query is the raw query.
	Query string
	// Operation is the operationId of the description it matched.
	Operation string
	// Conditional tells whether it carried If-None-Match.
	Conditional bool
	// Code is the status answered.
	Code int
	// Auth is the Authorization header.
	Auth string
	// Body is the JSON body, if any.
	Body map[string]any
}

// Status is a commit status posted.
type Status struct {
	Repo, SHA                              string
	State, TargetURL, Description, Context string
}

// PR is an open pull request of the double.
type PR struct {
	Number     int
	Base, Head string
}

// Double is the GitHub double.
type Double struct {
	*httptest.Server
	t      testing.TB
	routes []route

	mu       sync.Mutex
	branches map[string]map[string]string // repo → branch → sha
	pulls    map[string]map[int]PR
	requests []Request
	statuses []Status
	outage   int
	// app, when set, makes the double a GitHub App's world: the App's
	// JWT mints installation tokens, which the other requests must carry.
	app    *app
	minted int
	// RateRemaining is the X-RateLimit-Remaining answered (default 4999).
	rateRemaining int
}

// app is the GitHub App of the double.
type app struct {
	id int64
	// installations maps each repository to the App's installation on it.
	installations map[string]int64
	// tokens maps each token minted to its installation.
	tokens map[string]int64
}

// EnableApp makes the double answer as GitHub does to GitHub App appID,
// installed on the repositories of installations (owner/name → id): its
// JWT (Authorization: Bearer, issuer the App's id) finds an installation
// and mints its tokens, and every other request must carry a token minted
// for the installation on its repository.
func (d *Double) EnableApp(appID int64, installations map[string]int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in := map[string]int64{}
	for r, id := range installations {
		in[strings.ToLower(r)] = id
	}
	d.app = &app{id: appID, installations: in, tokens: map[string]int64{}}
}

// Minted counts the installation tokens minted.
func (d *Double) Minted() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.minted
}

// New starts a double, closed at the end of the test. Point go-github's
// BaseURL (RUNBOAT_GITHUB_API_URL) at its URL.
func New(t testing.TB) *Double {
	t.Helper()
	routes, err := loadRoutes()
	if err != nil {
		t.Fatal(err)
	}
	d := &Double{t: t, routes: routes, branches: map[string]map[string]string{}, pulls: map[string]map[int]PR{}, rateRemaining: 4999}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.Close)
	return d
}

// APIURL is the root of the double's REST API, for RUNBOAT_GITHUB_API_URL.
func (d *Double) APIURL() string { return d.URL + "/" }

// SetBranch makes branch of repo exist with its head at sha.
func (d *Double) SetBranch(repo, branch, sha string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	repo = strings.ToLower(repo)
	if d.branches[repo] == nil {
		d.branches[repo] = map[string]string{}
	}
	d.branches[repo][branch] = sha
}

// DeleteBranch deletes branch of repo.
func (d *Double) DeleteBranch(repo, branch string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.branches[strings.ToLower(repo)], branch)
}

// OpenPR opens (or updates) a pull request of repo.
func (d *Double) OpenPR(repo string, pr PR) {
	d.mu.Lock()
	defer d.mu.Unlock()
	repo = strings.ToLower(repo)
	if d.pulls[repo] == nil {
		d.pulls[repo] = map[int]PR{}
	}
	d.pulls[repo][pr.Number] = pr
}

// ClosePR closes a pull request of repo.
func (d *Double) ClosePR(repo string, number int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.pulls[strings.ToLower(repo)], number)
}

// Outage makes every request answer code (a 5xx); 0 ends it.
func (d *Double) Outage(code int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.outage = code
}

// SetRateRemaining sets the X-RateLimit-Remaining of the answers.
func (d *Double) SetRateRemaining(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rateRemaining = n
}

// Requests returns the requests received since the last call.
func (d *Double) Requests() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.requests
	d.requests = nil
	return out
}

// Statuses returns the commit statuses posted so far.
func (d *Double) Statuses() []Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.statuses)
}

func (d *Double) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"),
		Conditional: r.Header.Get("If-None-Match") != ""}
	if len(body) > 0 {
		_ = json.Unmarshal(body, &rec.Body)
	}
	code := d.answer(w, r, body, &rec)
	rec.Code = code
	d.mu.Lock()
	d.requests = append(d.requests, rec)
	d.mu.Unlock()
}

// answer checks the request and answers it; it returns the status code.
func (d *Double) answer(w http.ResponseWriter, r *http.Request, body []byte, rec *Request) int {
	rt, params, err := match(d.routes, r.Method, r.URL.Path)
	if err != nil {
		return d.refuse(w, r, []string{err.Error()})
	}
	rec.Operation = rt.op.OperationID
	problems := rt.checkParams(params, r.URL.Query())
	problems = append(problems, rt.checkBody(r.Header.Get("Content-Type"), body)...)
	if len(problems) > 0 {
		return d.refuse(w, r, problems)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(d.rateRemaining))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	if d.outage != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(d.outage)
		_, _ = w.Write([]byte(`{"message": "Server Error"}`))
		return d.outage
	}
	repo := strings.ToLower(params["owner"] + "/" + params["repo"])
	if code := d.authorize(w, r, rt, repo); code != 0 {
		return code
	}
	switch rt.op.OperationID {
	case "apps/get-repo-installation":
		id, ok := d.app.installations[repo]
		if !ok {
			return d.notFound(w)
		}
		return d.one(w, rt, "200", func(v map[string]any) {
			v["id"] = id
			v["app_id"] = d.app.id
			v["access_tokens_url"] = fmt.Sprintf("%s/app/installations/%d/access_tokens", d.URL, id)
		})
	case "apps/create-installation-access-token":
		id, _ := strconv.ParseInt(params["installation_id"], 10, 64)
		if !slices.Contains(slices.Collect(maps.Values(d.app.installations)), id) {
			return d.notFound(w)
		}
		d.minted++
		token := fmt.Sprintf("ghs_double%d_%d", id, d.minted)
		d.app.tokens[token] = id
		return d.one(w, rt, "201", func(v map[string]any) {
			v["token"] = token
			v["expires_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			delete(v, "repositories")
		})
	case "repos/list-branches":
		names := slices.Sorted(maps.Keys(d.branches[repo]))
		return d.list(w, r, rt, names, func(tmpl map[string]any, name string) {
			tmpl["name"] = name
			tmpl["protected"] = false
			delete(tmpl, "protection")
			commit, _ := tmpl["commit"].(map[string]any)
			commit["sha"] = d.branches[repo][name]
		})
	case "pulls/list":
		if s := r.URL.Query().Get("state"); s != "" && s != "open" {
			return d.refuse(w, r, []string{"the double lists open pull requests only"})
		}
		var numbers []string
		for _, n := range slices.Sorted(maps.Keys(d.pulls[repo])) {
			numbers = append(numbers, strconv.Itoa(n))
		}
		return d.list(w, r, rt, numbers, func(tmpl map[string]any, n string) {
			number, _ := strconv.Atoi(n)
			d.fillPull(tmpl, d.pulls[repo][number])
		})
	case "pulls/get":
		number, _ := strconv.Atoi(params["pull_number"])
		pr, ok := d.pulls[repo][number]
		if !ok {
			return d.notFound(w)
		}
		return d.one(w, rt, "200", func(v map[string]any) { d.fillPull(v, pr) })
	case "git/get-ref":
		branch, ok := strings.CutPrefix(params["ref"], "heads/")
		sha, exists := d.branches[repo][branch]
		if !ok || !exists {
			return d.notFound(w)
		}
		return d.one(w, rt, "200", func(v map[string]any) {
			v["ref"] = "refs/heads/" + branch
			obj, _ := v["object"].(map[string]any)
			obj["sha"] = sha
		})
	case "repos/create-commit-status":
		s := Status{Repo: repo, SHA: params["sha"], Context: "default"}
		for k, p := range map[string]*string{"state": &s.State, "target_url": &s.TargetURL, "description": &s.Description, "context": &s.Context} {
			if v, ok := rec.Body[k].(string); ok {
				*p = v
			}
		}
		d.statuses = append(d.statuses, s)
		return d.one(w, rt, "201", func(v map[string]any) {
			v["state"], v["target_url"], v["description"], v["context"] = s.State, s.TargetURL, s.Description, s.Context
		})
	}
	return d.refuse(w, r, []string{"operation " + rt.op.OperationID + " is in the description but the double does not answer it"})
}

// authorize checks the credentials of a request when the double is a
// GitHub App's world; it answers 401 and returns its code when they are
// wrong, 0 when they are right.
func (d *Double) authorize(w http.ResponseWriter, r *http.Request, rt *route, repo string) int {
	if d.app == nil {
		return 0
	}
	auth := r.Header.Get("Authorization")
	switch rt.op.OperationID {
	case "apps/get-repo-installation", "apps/create-installation-access-token":
		jwt, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || jwtIssuer(jwt) != strconv.FormatInt(d.app.id, 10) {
			return d.unauthorized(w, "want the App's JWT")
		}
		return 0
	}
	token, ok := strings.CutPrefix(auth, "token ")
	if !ok {
		token, ok = strings.CutPrefix(auth, "Bearer ")
	}
	id, minted := d.app.tokens[token]
	if !ok || !minted || id != d.app.installations[repo] {
		return d.unauthorized(w, "want a token of the App's installation on "+repo)
	}
	return 0
}

// jwtIssuer returns the iss claim of a JWT, unverified ("" when it is not
// one): the double checks who signs, not the signature.
func jwtIssuer(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Iss
}

func (d *Double) unauthorized(w http.ResponseWriter, why string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = fmt.Fprintf(w, `{"message": "Bad credentials: %s"}`, why)
	return http.StatusUnauthorized
}

// refuse fails the test: the request is not one GitHub allows.
func (d *Double) refuse(w http.ResponseWriter, r *http.Request, problems []string) int {
	d.t.Errorf("githubdouble: %s %s is not what GitHub's description allows: %s", r.Method, r.URL.RequestURI(), strings.Join(problems, "; "))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnprocessableEntity)
	_, _ = w.Write([]byte(`{"message": "Validation Failed"}`))
	return http.StatusUnprocessableEntity
}

func (d *Double) notFound(w http.ResponseWriter) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"message": "Not Found"}`))
	return http.StatusNotFound
}

// fillPull puts pr into an example pull request.
func (d *Double) fillPull(v map[string]any, pr PR) {
	v["number"] = pr.Number
	v["state"] = "open"
	if head, ok := v["head"].(map[string]any); ok {
		head["sha"] = pr.Head
	}
	if base, ok := v["base"].(map[string]any); ok {
		base["ref"] = pr.Base
	}
}

// one answers the example of code, filled by fill.
func (d *Double) one(w http.ResponseWriter, rt *route, code string, fill func(map[string]any)) int {
	ex, err := rt.example(code)
	if err != nil {
		d.t.Error(err)
		w.WriteHeader(http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	var v map[string]any
	if err := json.Unmarshal(ex, &v); err != nil {
		d.t.Errorf("githubdouble: example of %s: %v", rt.op.OperationID, err)
		w.WriteHeader(http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	fill(v)
	n, _ := strconv.Atoi(code)
	return d.write(w, n, v)
}

// list answers one page of keys (per_page, page), each the first item of
// the example filled by fill, with its ETag and Link header; 304 when the
// request's If-None-Match is the page's ETag.
func (d *Double) list(w http.ResponseWriter, r *http.Request, rt *route, keys []string, fill func(map[string]any, string)) int {
	q := r.URL.Query()
	perPage, page := 30, 1
	if v := q.Get("per_page"); v != "" {
		perPage, _ = strconv.Atoi(v)
	}
	if v := q.Get("page"); v != "" {
		page, _ = strconv.Atoi(v)
	}
	perPage = max(1, min(perPage, 100))
	page = max(page, 1)
	ex, err := rt.example("200")
	if err != nil {
		d.t.Error(err)
		w.WriteHeader(http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	var items []map[string]any
	if err := json.Unmarshal(ex, &items); err != nil || len(items) == 0 {
		d.t.Errorf("githubdouble: example of %s is not a list: %v", rt.op.OperationID, err)
		w.WriteHeader(http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	tmpl, _ := json.Marshal(items[0])
	from := min((page-1)*perPage, len(keys))
	to := min(from+perPage, len(keys))
	out := []map[string]any{}
	for _, k := range keys[from:to] {
		var v map[string]any
		_ = json.Unmarshal(tmpl, &v)
		fill(v, k)
		out = append(out, v)
	}
	if to < len(keys) {
		next := *r.URL
		nq := next.Query()
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, d.URL, next.RequestURI()))
	}
	b, _ := json.Marshal(out)
	sum := sha256.Sum256(append(b, []byte(w.Header().Get("Link"))...))
	etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	return d.writeRaw(w, http.StatusOK, b)
}

func (d *Double) write(w http.ResponseWriter, code int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		d.t.Errorf("githubdouble: %v", err)
	}
	return d.writeRaw(w, code, b)
}

func (d *Double) writeRaw(w http.ResponseWriter, code int, b []byte) int {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.Copy(w, bytes.NewReader(b))
	return code
}
