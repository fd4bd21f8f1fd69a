package console

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"runboat.dev/functions/internal/testutil"
	"runboat.dev/shared/model"
)

// These tests need no cluster.

func validOptions() Options {
	return Options{
		Client:      fake.NewClientset(),
		Namespace:   "builds",
		Ops:         nopOps{},
		Deployer:    nopDeployer{},
		BuildDomain: testDomain,
		AdminUser:   testUser,
		AdminPasswd: testPasswd,
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Options{BuildURLPattern: "ftp://{slug}", MailURLPattern: "http://x.{domain}", BaseURL: "nope", ResetInterval: -time.Second})
	if err == nil {
		t.Fatal("New accepted empty options")
	}
	for _, w := range []string{
		"missing Kubernetes client", "missing builds namespace", "missing Operations", "missing Deployer",
		"missing admin user or password", "invalid build URL pattern: want an http:// or https:// URL with a host",
		"invalid mail URL pattern: want {slug} in it", "invalid base URL", "invalid reset interval -1s",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("New error does not say %q: %v", w, err)
		}
	}
	if _, err := New(validOptions()); err != nil {
		t.Errorf("New(valid options): %v", err)
	}
	o := validOptions()
	o.BuildDomain = ""
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "build domain is empty") {
		t.Errorf("New without a build domain: %v", err)
	}
	o.BuildURLPattern, o.MailURLPattern = "http://127.0.0.1:8080/{slug}", "http://127.0.0.1:8080/{slug}/mail"
	if _, err := New(o); err != nil {
		t.Errorf("New with patterns without {domain}: %v", err)
	}
}

// TestInternalErrorsAreNotShown proves that a failure of the cluster gives
// a generic answer, the details going to the log only.
func TestInternalErrorsAreNotShown(t *testing.T) {
	const secret = "etcd at 10.1.2.3:2379 exploded"
	client := fake.NewClientset()
	client.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New(secret)
	})
	var log testutil.SyncBuffer
	o := validOptions()
	o.Client, o.Logger = client, zerolog.New(&log)
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/status"},
		{http.MethodGet, "/api/v1/repos"},
		{http.MethodGet, "/api/v1/builds"},
		{http.MethodGet, "/api/v1/builds/b1"},
		{http.MethodGet, "/api/v1/builds/b1/init-log"},
		{http.MethodPost, "/api/v1/builds/b1/start"},
		{http.MethodPost, "/api/v1/builds/b1/reset"},
		{http.MethodGet, "/"},
		{http.MethodGet, "/repos/acme/app"},
		{http.MethodGet, "/builds/b1"},
		{http.MethodGet, "/builds/b1?live"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		body := w.Body.String()
		if w.Code != http.StatusInternalServerError {
			t.Errorf("%s %s: %d, want 500", tc.method, tc.path, w.Code)
		}
		if strings.Contains(body, "10.1.2.3") || strings.Contains(body, "exploded") || strings.Contains(body, "goroutine") {
			t.Errorf("%s %s shows internal details: %s", tc.method, tc.path, body)
		}
		if strings.HasPrefix(tc.path, "/api/") && strings.TrimSpace(body) != `{"detail":"internal error"}` {
			t.Errorf("%s %s: body %s", tc.method, tc.path, body)
		}
	}
	if !strings.Contains(log.String(), secret) {
		t.Errorf("the failure is not in the log:\n%s", log.String())
	}
}

func TestPanicIsA500(t *testing.T) {
	var log testutil.SyncBuffer
	o := validOptions()
	o.Logger = zerolog.New(&log)
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom at 0xdeadbeef") })
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "kaboom") {
		t.Errorf("panic answered %d %s", w.Code, w.Body.String())
	}
	if !strings.Contains(log.String(), "kaboom") {
		t.Errorf("panic not logged: %s", log.String())
	}
}

func TestSortBuildsAsRunboat(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name, repo, branch string, pr int, created time.Duration) buildInfo {
		return buildInfo{Build: model.Build{
			Name: name, Created: t0.Add(created),
			Ref: model.Ref{Repo: repo, TargetBranch: branch, PR: pr, Commit: sha(name)},
		}}
	}
	bs := []buildInfo{
		mk("pr2", "a/x", "16.0", 2, 0),
		mk("main-old", "a/x", "main", 0, 0),
		mk("b-lib", "b/y", "16.0", 0, 0),
		mk("pr10-17", "a/x", "17.0", 10, 0),
		mk("pr10-16", "a/x", "16.0", 10, time.Hour),
		mk("main-new", "a/x", "main", 0, time.Minute),
		mk("v16", "a/x", "16.0", 0, 0),
		mk("same-b", "a/x", "15.0", 0, 0),
		mk("same-a", "a/x", "15.0", 0, 0),
		mk("bigpr", "a/x", "16.0", 1000000, 0),
	}
	sortBuilds(bs)
	var got []string
	for _, b := range bs {
		got = append(got, b.Name)
	}
	// Repository descending; PR descending with branch builds as 999999 (so
	// a PR above that number comes first, as in the Python runboat); target
	// branch descending; newest first; then by name.
	want := []string{"b-lib", "bigpr", "main-new", "main-old", "v16", "same-a", "same-b", "pr10-17", "pr10-16", "pr2"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestParseFilter(t *testing.T) {
	f, err := parseFilter(url.Values{"repo": {"OCA/Server-Env"}, "branch": {"16.0"}, "pr": {"12"}, "status": {"started"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if f != (filter{repo: "oca/server-env", branch: "16.0", pr: 12, status: model.StatusStarted}) {
		t.Errorf("filter %+v", f)
	}
	if _, err := parseFilter(url.Values{"status": {"started"}}, false); err == nil {
		t.Error("status accepted where it is not a filter")
	}
	b := model.Build{Ref: model.Ref{Repo: "oca/server-env", TargetBranch: "16.0", PR: 12}, Status: model.StatusStarted}
	if f.match(b) {
		t.Error("branch filter matched a PR build")
	}
	f.branch = ""
	if !f.match(b) {
		t.Error("filter does not match its build")
	}
	if !(filter{}).match(b) || !(filter{}).empty() {
		t.Error("the empty filter does not match everything")
	}
}

func TestTailLog(t *testing.T) {
	if got := tailLog("a\x1b[1;32mgreen\x1b[0m \xffb\n"); got != "a\x1b[1;32mgreen\x1b[0m \uFFFDb\n" {
		t.Errorf("tailLog = %q", got)
	}
	long := strings.Repeat("line of log\n", 2*maxLogBytes/12)
	got := tailLog("FIRST\n" + long + "LAST\n")
	if len(got) > maxLogBytes || strings.Contains(got, "FIRST") || !strings.HasSuffix(got, "LAST\n") || !strings.HasPrefix(got, "line of log\n") {
		t.Errorf("tailLog of a long log: %d bytes, starts %q, ends %q", len(got), got[:20], got[len(got)-20:])
	}
}

// TestLogHTML renders the colours of a log as runboat's (ansi2html), and
// escapes the rest.
func TestLogHTML(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain <b>&amp;\n", "plain &lt;b&gt;&amp;amp;\n"},
		{"a\x1b[1;32mgreen\x1b[0m b", `a<span class="ansi-bold ansi-fg-32">green</span> b`},
		{"\x1b[31mred\x1b[1mbold\x1b[39mplain\x1b[mx", `<span class="ansi-fg-31">red</span><span class="ansi-bold ansi-fg-31">bold</span><span class="ansi-bold">plain</span>x`},
		{"\x1b[44;97mw\x1b[49mx\x1b[22m", `<span class="ansi-fg-97 ansi-bg-44">w</span><span class="ansi-fg-97">x</span>`},
		{"\x1b[38;5;208morange\x1b[0m\x1b[2K\x1b[?25lz", `orangez`},
		{"\x1b[31m<script>", `<span class="ansi-fg-31">&lt;script&gt;</span>`},
	} {
		if got := logHTML(tc.in); got != tc.want {
			t.Errorf("logHTML(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStaticFiles(t *testing.T) {
	h, err := New(validOptions())
	if err != nil {
		t.Fatal(err)
	}
	for name, ct := range map[string]string{"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"} {
		u := h.assets.urls[name]
		if !strings.HasPrefix(u, "/static/"+name+"?v=") {
			t.Errorf("address of %s: %q", name, u)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u, nil))
		body, _ := io.ReadAll(w.Body)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ct || len(body) < 100 ||
			!strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s: %d %q %q, %d bytes", u, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"), len(body))
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/static/nothing.js", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("unknown static file: %d", w.Code)
	}
}

func TestCrossSiteActionsAreRefused(t *testing.T) {
	h, err := New(validOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/builds/b1/start", "/builds/b1?live"} {
		for _, site := range []string{"cross-site", "same-site"} {
			r := httptest.NewRequest(http.MethodPost, path, nil)
			r.Header.Set("Sec-Fetch-Site", site)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden {
				t.Errorf("POST %s from a %s page: %d, want 403", path, site, w.Code)
			}
		}
	}
	// The same request from a page of the console, or from a script, goes
	// through: to a 404, the fake cluster holding no build.
	for _, site := range []string{"same-origin", ""} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/builds/b1/start", nil)
		if site != "" {
			r.Header.Set("Sec-Fetch-Site", site)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound {
			t.Errorf("POST with Sec-Fetch-Site %q: %d, want 404 (no such build)", site, w.Code)
		}
	}
}
