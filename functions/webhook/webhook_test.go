package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"runboat.dev/functions/internal/testutil"
	"runboat.dev/shared/github"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
)

var testSecret = []byte("test-webhook-secret")

const (
	testRepo    = "codertocat/hello-world" // Codertocat/Hello-World in the payloads
	testBaseURL = "https://runboat.example.org"
	pushSHA     = "6113728f27ae82c7b1a177c8d03f9e96e0adf246" // after, in push.branch.json
	prSHA       = "ec26c3e57ca3a959ca5aad62de7213c562f8c821" // head.sha, in pull_request.*.json
	prNumber    = 2
)

// call is one call to the fake deployer.
type call struct {
	Method string
	Ref    model.Ref // Deploy
	Repo   string    // Undeploy*
	Branch string    // UndeployBranch
	PR     int       // UndeployPR
}

// fakeDeployer records its calls; created and err decide its answers.
type fakeDeployer struct {
	mu      sync.Mutex
	calls   []call
	created bool
	err     error
}

func (d *fakeDeployer) record(c call) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, c)
}

func (d *fakeDeployer) Deploy(_ context.Context, ref model.Ref) (string, bool, error) {
	d.record(call{Method: "Deploy", Ref: ref})
	if d.err != nil {
		return "", false, d.err
	}
	return ref.Name(), d.created, nil
}

func (d *fakeDeployer) UndeployBranch(_ context.Context, repo, branch string) (int, error) {
	d.record(call{Method: "UndeployBranch", Repo: repo, Branch: branch})
	return 1, d.err
}

func (d *fakeDeployer) UndeployPR(_ context.Context, repo string, pr int) (int, error) {
	d.record(call{Method: "UndeployPR", Repo: repo, PR: pr})
	return 1, d.err
}

func (d *fakeDeployer) Calls() []call {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]call(nil), d.calls...)
}

// status is one commit status posted.
type status struct {
	Repo, SHA   string
	State       github.StatusState
	TargetURL   string
	Description string
}

// fakePoster records the statuses posted; err makes it fail; next, if
// set, posts them too (to GitHub's double, in the e2e tests).
type fakePoster struct {
	mu       sync.Mutex
	statuses []status
	err      error
	next     github.StatusPoster
}

func (p *fakePoster) PostStatus(ctx context.Context, repo, sha string, state github.StatusState, targetURL, description string) error {
	p.mu.Lock()
	p.statuses = append(p.statuses, status{repo, sha, state, targetURL, description})
	err, next := p.err, p.next
	p.mu.Unlock()
	if err == nil && next != nil {
		err = next.PostStatus(ctx, repo, sha, state, targetURL, description)
	}
	return err
}

// fixture is a handler with fakes and a captured log.
type fixture struct {
	h        http.Handler
	deployer *fakeDeployer
	poster   *fakePoster
	log      *syncBuffer
}

// syncBuffer collects the log.
type syncBuffer = testutil.SyncBuffer

// supportedBranches are the branches of testRepo that tests support. The name
// of the tag in the payloads is among them, so that a tag mistaken for a
// branch would show.
var supportedBranches = map[string]bool{"master": true, "feature/x": true, "16.0/mis-builder": true, "simple-tag": true}

func newFixture(t testing.TB, mutate ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{deployer: &fakeDeployer{created: true}, poster: &fakePoster{}, log: &syncBuffer{}}
	opts := Options{
		Secret: testSecret,
		// The payloads' repository is Codertocat/Hello-World: only its lower
		// case form is supported.
		Supported: func(repo, branch string) bool {
			return repo == testRepo && supportedBranches[branch]
		},
		Deployer: f.deployer,
		Statuses: f.poster,
		BaseURL:  testBaseURL,
		Logger:   zerolog.New(f.log).Level(zerolog.InfoLevel),
	}
	for _, m := range mutate {
		m(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.h = h
	return f
}

// delivery builds a signed webhook request.
func delivery(event string, body []byte) *http.Request {
	return testutil.Delivery(Path, event, body, testSecret)
}

func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// serveAtOnce serves n copies of a delivery concurrently and returns their
// status codes.
func (f *fixture) serveAtOnce(n int, event string, body []byte) []int {
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = f.serve(delivery(event, body)).Code })
	}
	wg.Wait()
	return codes
}

// payload is a real GitHub payload of testdata.
var payload = testutil.Payload

// edit changes a payload in memory.
func edit(t testing.TB, body []byte, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func obj(m map[string]any, key string) map[string]any {
	return m[key].(map[string]any)
}

func TestNewOptions(t *testing.T) {
	ok := Options{Secret: []byte("s"), Supported: func(string, string) bool { return true }, Deployer: &fakeDeployer{}, Statuses: github.NoopStatusPoster{}}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	for name, change := range map[string]func(*Options){
		"no secret":    func(o *Options) { o.Secret = nil },
		"no supported": func(o *Options) { o.Supported = nil },
		"no deployer":  func(o *Options) { o.Deployer = nil },
		"no statuses":  func(o *Options) { o.Statuses = nil },
	} {
		o := ok
		change(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	var log bytes.Buffer
	o := ok
	o.Secret, o.Insecure, o.Logger = nil, true, zerolog.New(&log)
	if _, err := New(o); err != nil {
		t.Fatalf("insecure without secret refused: %v", err)
	}
	if !strings.Contains(log.String(), `"level":"warn"`) {
		t.Errorf("no warning when insecure: %q", log.String())
	}
}

func TestRoutes(t *testing.T) {
	f := newFixture(t)
	body := payload(t, "ping")
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, Path, http.StatusMethodNotAllowed},
		{http.MethodPut, Path, http.StatusMethodNotAllowed},
		{http.MethodPost, "/", http.StatusNotFound},
		{http.MethodPost, Path + "/", http.StatusNotFound},
		{http.MethodPost, "/webhooks/gitlab", http.StatusNotFound},
		{http.MethodGet, "/builds", http.StatusNotFound},
		{http.MethodPost, Path, http.StatusOK},
	} {
		r := delivery("ping", body)
		r.Method, r.URL.Path = tc.method, tc.path
		w := f.serve(r)
		if w.Code != tc.want {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, w.Code, tc.want)
		}
		if tc.want == http.StatusMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, w.Header().Get("Allow"))
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t)
	// A valid push padded with spaces: valid JSON, validly signed, too big.
	body := append(payload(t, "push.branch"), bytes.Repeat([]byte(" "), MaxBodyBytes)...)
	w := f.serve(delivery("push", body))
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("known length: got %d, want 413", w.Code)
	}
	// Same, without a Content-Length.
	r := delivery("push", body)
	r.Body, r.ContentLength = io.NopCloser(io.MultiReader(bytes.NewReader(body))), -1
	w = f.serve(r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("unknown length: got %d, want 413", w.Code)
	}
	if calls := f.deployer.Calls(); len(calls) != 0 {
		t.Errorf("deployer called: %v", calls)
	}
	// At the limit exactly, the body is read.
	body = append(payload(t, "push.branch"), ' ')
	body = append(body, bytes.Repeat([]byte(" "), MaxBodyBytes-len(body))...)
	if w := f.serve(delivery("push", body)); w.Code != http.StatusCreated {
		t.Errorf("body of exactly %d bytes: got %d, want 201", MaxBodyBytes, w.Code)
	}
}

func TestSignature(t *testing.T) {
	f := newFixture(t)
	body := payload(t, "push.branch")
	for name, change := range map[string]func(r *http.Request){
		"missing":      func(r *http.Request) { r.Header.Del("X-Hub-Signature-256") },
		"wrong secret": func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", github.Signature(body, []byte("other"))) },
		"tampered": func(r *http.Request) {
			r.Header.Set("X-Hub-Signature-256", github.Signature(append(body, ' '), testSecret))
		},
		"garbage":                func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", "sha256=not-hex") },
		"sha1 only":              func(r *http.Request) { r.Header.Del("X-Hub-Signature-256"); r.Header.Set("X-Hub-Signature", "sha1=0") },
		"no event, no signature": func(r *http.Request) { r.Header.Del("X-GitHub-Event"); r.Header.Del("X-Hub-Signature-256") },
	} {
		r := delivery("push", body)
		change(r)
		if w := f.serve(r); w.Code != http.StatusUnauthorized {
			t.Errorf("%s: got %d, want 401", name, w.Code)
		}
	}
	if calls := f.deployer.Calls(); len(calls) != 0 {
		t.Errorf("deployer called: %v", calls)
	}
}

func TestInsecureAcceptsUnsigned(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Secret, o.Insecure = nil, true })
	r := delivery("push", payload(t, "push.branch"))
	r.Header.Del("X-Hub-Signature-256")
	if w := f.serve(r); w.Code != http.StatusCreated {
		t.Fatalf("got %d, want 201", w.Code)
	}
	if n := len(f.deployer.Calls()); n != 1 {
		t.Errorf("got %d deployer calls, want 1", n)
	}
}

func TestMalformed(t *testing.T) {
	f := newFixture(t)
	push, pr := payload(t, "push.branch"), payload(t, "pull_request.opened")
	for _, tc := range []struct {
		name, event string
		body        []byte
		header      func(h http.Header)
	}{
		{name: "bad json", event: "push", body: []byte(`{"ref": "refs/heads/master",`)},
		{name: "not an object", event: "push", body: []byte(`[1, 2]`)},
		{name: "wrong type", event: "pull_request", body: edit(t, pr, func(m map[string]any) { m["number"] = "two" })},
		{name: "missing event header", event: "", body: push},
		{name: "text content type", event: "push", body: push, header: func(h http.Header) { h.Set("Content-Type", "text/plain") }},
		{name: "push without ref", event: "push", body: edit(t, push, func(m map[string]any) { delete(m, "ref") })},
		{name: "push without after", event: "push", body: edit(t, push, func(m map[string]any) { delete(m, "after") })},
		{name: "push without repository", event: "push", body: edit(t, push, func(m map[string]any) { delete(m, "repository") })},
		{name: "push without full_name", event: "push", body: edit(t, push, func(m map[string]any) { delete(obj(m, "repository"), "full_name") })},
		{name: "push to refs/heads/", event: "push", body: edit(t, push, func(m map[string]any) { m["ref"] = "refs/heads/" })},
		{name: "push of a short sha", event: "push", body: edit(t, push, func(m map[string]any) { m["after"] = "6113728" })},
		{name: "push to a bad repo name", event: "push", body: edit(t, push, func(m map[string]any) { obj(m, "repository")["full_name"] = "a/b/c" })},
		{name: "pr without number", event: "pull_request", body: edit(t, pr, func(m map[string]any) { delete(m, "number") })},
		{name: "pr without head.sha", event: "pull_request", body: edit(t, pr, func(m map[string]any) { delete(obj(obj(m, "pull_request"), "head"), "sha") })},
		{name: "pr without base.ref", event: "pull_request", body: edit(t, pr, func(m map[string]any) { delete(obj(obj(m, "pull_request"), "base"), "ref") })},
		{name: "pr without repository", event: "pull_request", body: edit(t, pr, func(m map[string]any) { delete(m, "repository") })},
		{name: "closed pr without number", event: "pull_request", body: edit(t, payload(t, "pull_request.closed"), func(m map[string]any) { delete(m, "number") })},
		{name: "delete without ref_type", event: "delete", body: edit(t, payload(t, "delete.branch"), func(m map[string]any) { delete(m, "ref_type") })},
		{name: "delete without ref", event: "delete", body: edit(t, payload(t, "delete.branch"), func(m map[string]any) { delete(m, "ref") })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := delivery(tc.event, tc.body)
			if tc.header != nil {
				tc.header(r.Header)
			}
			w := f.serve(r)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("got %d %q, want 400", w.Code, w.Body.String())
			}
			if msg := strings.TrimSpace(w.Body.String()); msg == "" || len(msg) > 100 || strings.Contains(msg, "invalid character") {
				t.Errorf("reason %q: want short text without parser details", msg)
			}
		})
	}
	if calls := f.deployer.Calls(); len(calls) != 0 {
		t.Errorf("deployer called: %v", calls)
	}
}

func TestPing(t *testing.T) {
	f := newFixture(t)
	if w := f.serve(delivery("ping", payload(t, "ping"))); w.Code != http.StatusOK {
		t.Errorf("got %d, want 200", w.Code)
	}
}

func deployCall(branch string, pr int, sha string) call {
	return call{Method: "Deploy", Ref: model.Ref{Repo: testRepo, TargetBranch: branch, PR: pr, Commit: sha}}
}

func TestEvents(t *testing.T) {
	setRef := func(ref string) func(m map[string]any) { return func(m map[string]any) { m["ref"] = ref } }
	setRepo := func(name string) func(m map[string]any) {
		return func(m map[string]any) { obj(m, "repository")["full_name"] = name }
	}
	setBase := func(ref string) func(m map[string]any) {
		return func(m map[string]any) { obj(obj(m, "pull_request"), "base")["ref"] = ref }
	}
	for _, tc := range []struct {
		name, event, file string
		change            func(m map[string]any)
		want              int
		calls             []call
	}{
		{name: "push to a branch", event: "push", file: "push.branch", want: http.StatusCreated,
			calls: []call{deployCall("master", 0, pushSHA)}},
		{name: "push to a branch with slashes", event: "push", file: "push.branch", change: setRef("refs/heads/16.0/mis-builder"),
			want: http.StatusCreated, calls: []call{deployCall("16.0/mis-builder", 0, pushSHA)}},
		{name: "push to an unsupported branch", event: "push", file: "push.branch", change: setRef("refs/heads/develop"), want: http.StatusAccepted},
		{name: "push to an unsupported repo", event: "push", file: "push.branch", change: setRepo("Codertocat/Other"), want: http.StatusAccepted},
		{name: "push of a tag", event: "push", file: "push.tag", want: http.StatusAccepted},
		{name: "push of a deleted tag", event: "push", file: "push.deleted", change: setRef("refs/tags/simple-tag"), want: http.StatusAccepted},
		{name: "push of another ref", event: "push", file: "push.branch", change: setRef("refs/notes/commits"), want: http.StatusAccepted},
		{name: "push deleting a branch", event: "push", file: "push.deleted", want: http.StatusOK,
			calls: []call{{Method: "UndeployBranch", Repo: testRepo, Branch: "feature/x"}}},
		{name: "push deleting an unsupported branch", event: "push", file: "push.deleted", change: setRef("refs/heads/develop"), want: http.StatusAccepted},
		{name: "pull request opened", event: "pull_request", file: "pull_request.opened", want: http.StatusCreated,
			calls: []call{deployCall("master", prNumber, prSHA)}},
		{name: "pull request synchronize", event: "pull_request", file: "pull_request.synchronize", want: http.StatusCreated,
			calls: []call{deployCall("master", prNumber, prSHA)}},
		{name: "pull request reopened", event: "pull_request", file: "pull_request.reopened", want: http.StatusCreated,
			calls: []call{deployCall("master", prNumber, prSHA)}},
		{name: "pull request closed", event: "pull_request", file: "pull_request.closed", want: http.StatusOK,
			calls: []call{{Method: "UndeployPR", Repo: testRepo, PR: prNumber}}},
		{name: "pull request labeled", event: "pull_request", file: "pull_request.labeled", want: http.StatusAccepted},
		{name: "pull request on an unsupported branch", event: "pull_request", file: "pull_request.opened", change: setBase("develop"), want: http.StatusAccepted},
		{name: "pull request closed on an unsupported branch", event: "pull_request", file: "pull_request.closed", change: setBase("develop"), want: http.StatusAccepted},
		{name: "pull request on an unsupported repo", event: "pull_request", file: "pull_request.opened", change: setRepo("Other/Hello-World"), want: http.StatusAccepted},
		{name: "branch deleted", event: "delete", file: "delete.branch", want: http.StatusOK,
			calls: []call{{Method: "UndeployBranch", Repo: testRepo, Branch: "feature/x"}}},
		{name: "unsupported branch deleted", event: "delete", file: "delete.branch", change: setRef("develop"), want: http.StatusAccepted},
		{name: "tag deleted", event: "delete", file: "delete.tag", want: http.StatusAccepted},
		{name: "star", event: "star", file: "star.created", want: http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			body := payload(t, tc.file)
			if tc.change != nil {
				body = edit(t, body, tc.change)
			}
			w := f.serve(delivery(tc.event, body))
			if w.Code != tc.want {
				t.Errorf("got %d %q, want %d", w.Code, w.Body.String(), tc.want)
			}
			got := f.deployer.Calls()
			if len(got) != len(tc.calls) {
				t.Fatalf("got calls %+v, want %+v", got, tc.calls)
			}
			for i := range got {
				if got[i] != tc.calls[i] {
					t.Errorf("call %d: got %+v, want %+v", i, got[i], tc.calls[i])
				}
			}
		})
	}
}

func TestUnknownEvent(t *testing.T) {
	f := newFixture(t)
	w := f.serve(delivery("runboat_custom_event", []byte(`{"action":"done"}`)))
	if w.Code != http.StatusAccepted {
		t.Errorf("got %d, want 202", w.Code)
	}
	if calls := f.deployer.Calls(); len(calls) != 0 {
		t.Errorf("deployer called: %v", calls)
	}
}

func TestExistingBuild(t *testing.T) {
	f := newFixture(t)
	f.deployer.created = false
	if w := f.serve(delivery("push", payload(t, "push.branch"))); w.Code != http.StatusOK {
		t.Errorf("got %d, want 200", w.Code)
	}
	if len(f.poster.statuses) != 0 {
		t.Errorf("status posted for an existing build: %+v", f.poster.statuses)
	}
}

func TestPendingStatus(t *testing.T) {
	f := newFixture(t)
	w := f.serve(delivery("pull_request", payload(t, "pull_request.opened")))
	if w.Code != http.StatusCreated {
		t.Fatalf("got %d, want 201", w.Code)
	}
	name := deployCall("master", prNumber, prSHA).Ref.Name()
	wantURL := testBaseURL + "/builds/" + name
	if len(f.poster.statuses) != 1 {
		t.Fatalf("got statuses %+v, want one", f.poster.statuses)
	}
	s := f.poster.statuses[0]
	if s.Repo != testRepo || s.SHA != prSHA || s.State != github.StatusPending || s.TargetURL != wantURL+"?live" {
		t.Errorf("got status %+v", s)
	}
	if got := w.Header().Get("Location"); got != wantURL {
		t.Errorf("Location %q, want %q", got, wantURL)
	}
	if !strings.Contains(w.Body.String(), name) {
		t.Errorf("body %q does not name the build", w.Body.String())
	}
}

func TestStatusFailureDoesNotFail(t *testing.T) {
	f := newFixture(t)
	f.poster.err = errors.New("github says no")
	w := f.serve(delivery("push", payload(t, "push.branch")))
	if w.Code != http.StatusCreated {
		t.Errorf("got %d, want 201", w.Code)
	}
	if !strings.Contains(f.log.String(), "github says no") {
		t.Errorf("status failure not logged: %s", f.log.String())
	}
}

func TestDeployerFails(t *testing.T) {
	const secretDetail = "etcd at 10.0.0.7 refused"
	for _, tc := range []struct{ event, file string }{
		{"push", "push.branch"},
		{"push", "push.deleted"},
		{"pull_request", "pull_request.closed"},
		{"delete", "delete.branch"},
	} {
		f := newFixture(t)
		f.deployer.err = errors.New(secretDetail)
		w := f.serve(delivery(tc.event, payload(t, tc.file)))
		if w.Code != http.StatusInternalServerError {
			t.Errorf("%s: got %d, want 500", tc.file, w.Code)
		}
		if strings.Contains(w.Body.String(), "10.0.0.7") {
			t.Errorf("%s: internal error sent to the client: %q", tc.file, w.Body.String())
		}
		if !strings.Contains(f.log.String(), secretDetail) {
			t.Errorf("%s: error not logged: %s", tc.file, f.log.String())
		}
		if len(f.poster.statuses) != 0 {
			t.Errorf("%s: status posted after a failure", tc.file)
		}
	}
}

// panickingDeployer panics in every call with a message quoting a secret.
type panickingDeployer struct{ fakeDeployer }

const panicSecret = "ghp_panicTOKEN42"

func (*panickingDeployer) Deploy(context.Context, model.Ref) (string, bool, error) {
	panic("deployer broke, token " + panicSecret)
}

// A panic in the webhook's path is answered 500 with nothing of it, and
// logged through the process's logger, whose output redacts secrets.
func TestPanicIsA500(t *testing.T) {
	var log testutil.SyncBuffer
	f := newFixture(t, func(o *Options) {
		o.Deployer = &panickingDeployer{}
		o.Logger = zerolog.New(logging.Redacting(&log, panicSecret))
	})
	w := f.serve(delivery("push", payload(t, "push.branch")))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "broke") {
		t.Errorf("panic answered %d %q, want 500 saying nothing of it", w.Code, w.Body.String())
	}
	if !strings.Contains(log.String(), "webhook handler panicked") || !strings.Contains(log.String(), "deployer broke, token [REDACTED]") {
		t.Errorf("panic not logged, redacted: %s", log.String())
	}
	if strings.Contains(log.String(), panicSecret) {
		t.Errorf("the log holds the secret: %s", log.String())
	}
}

// logLines returns the JSON log lines written.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestOneLogLinePerDelivery(t *testing.T) {
	for _, tc := range []struct {
		event, file, action, outcome string
	}{
		{"pull_request", "pull_request.opened", "opened", "created"},
		{"pull_request", "pull_request.labeled", "labeled", "ignored"},
		{"star", "star.created", "created", "ignored"},
		{"push", "push.deleted", "", "undeployed"},
	} {
		f := newFixture(t)
		f.serve(delivery(tc.event, payload(t, tc.file)))
		lines := logLines(t, f.log.String())
		if len(lines) != 1 {
			t.Fatalf("%s: got %d log lines, want 1: %s", tc.file, len(lines), f.log.String())
		}
		l := lines[0]
		want := map[string]any{
			"delivery": testutil.DeliveryID,
			"event":    tc.event,
			"repo":     testRepo,
			"outcome":  tc.outcome,
		}
		if tc.action != "" {
			want["action"] = tc.action
		}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("%s: log %s = %v, want %v (line %v)", tc.file, k, l[k], v, l)
			}
		}
	}
}

func TestConcurrentIdenticalDeliveries(t *testing.T) {
	f := newFixture(t)
	const n = 50
	codes := f.serveAtOnce(n, "push", payload(t, "push.branch"))
	for i, c := range codes {
		if c < 200 || c > 299 {
			t.Errorf("delivery %d: got %d", i, c)
		}
	}
	calls := f.deployer.Calls()
	if len(calls) != n {
		t.Fatalf("got %d Deploy calls, want %d", len(calls), n)
	}
	want := deployCall("master", 0, pushSHA)
	for i, c := range calls {
		if c != want {
			t.Errorf("call %d: got %+v, want %+v", i, c, want)
		}
	}
}

// Calls returns the statuses posted so far.
func (p *fakePoster) Calls() []status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]status(nil), p.statuses...)
}
