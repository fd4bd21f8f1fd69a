package console

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"runboat.dev/shared/model"
)

// These tests read the pages as HTML, on the local control plane; the
// browser test runs their script.

func wantIn(t *testing.T, what, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("%s lacks %q", what, p)
		}
	}
}

func wantNotIn(t *testing.T, what, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(body, p) {
			t.Errorf("%s holds %q", what, p)
		}
	}
}

func TestPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	main := f.createBuild(t, spec{repo: "acme/app", branch: "main"})
	failed := f.createBuild(t, spec{repo: "acme/app", branch: "main", pr: 5, init: model.InitFailed, reason: "OOMKilled (exit code 137)"})
	todo := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", init: model.InitTodo})
	hostile := f.createBuild(t, spec{repo: "acme/app", branch: `x"><script>alert(1)</script>`})
	started := f.startedBuild(t, spec{repo: "acme/app", branch: "main", pr: 6})
	f.createBuild(t, spec{repo: "other/lib", branch: "main"})

	home := f.do(t, http.MethodGet, "/", "").want(t, http.StatusOK, "home")
	wantIn(t, "home", home.body, `href="/repos/acme/app"`, `href="/repos/other/lib"`, `data-poll="/?part=body"`,
		"5 builds, 1 started, 1 failed", `<span class="n">6<small>/10</small></span>deployed`, `<meta name="viewport"`)
	if csp := home.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("home Content-Security-Policy %q", csp)
	}
	part := f.do(t, http.MethodGet, "/?part=body", "").want(t, http.StatusOK, "home body")
	wantIn(t, "home body", part.body, "Repositories")
	wantNotIn(t, "home body", part.body, "<html", "<head")

	repo := f.do(t, http.MethodGet, "/repos/Acme/App", "").want(t, http.StatusOK, "repo page")
	body := repo.body
	wantIn(t, "repo page", body,
		`data-poll="/repos/acme/app?part=body"`,
		`data-build="`+main.Name()+`" data-status="stopped"`,
		`data-build="`+failed.Name()+`" data-status="failed"`,
		`data-build="`+todo.Name()+`" data-status="initializing"`,
		`data-build="`+started.Name()+`" data-status="started"`,
		`<a href="https://github.com/acme/app/pull/5">PR #5</a>`,
		`data-action="/api/v1/builds/`+main.Name()+`/start"`,
		`data-action="/api/v1/builds/`+started.Name()+`/stop"`,
		`href="http://`+started.Slug()+`.`+testDomain+`"`,
		`href="http://`+started.Slug()+`.mail.`+testDomain+`"`,
		"OOMKilled (exit code 137)",
		`href="/api/v1/builds/`+failed.Name()+`/init-log"`,
		`href="https://github.com/acme/app/commit/`+main.Commit+`"`,
		"Waiting for initialization.",
	)
	wantNotIn(t, "repo page", body, `data-action="/api/v1/builds/`+failed.Name()+`/start"`, "<script>alert(1)")
	wantNotIn(t, "repo page", body, `data-build="`+f.createBuildName("other/lib", "main")+`"`)
	// Branches first (by descending name), then pull requests by
	// descending number.
	last := -1
	for _, key := range []string{`data-group="branch-x`, `data-group="branch-main"`, `data-group="branch-16.0"`, `data-group="pr-6-main"`, `data-group="pr-5-main"`} {
		i := strings.Index(body, key)
		switch {
		case i < 0:
			t.Errorf("repo page lacks group %s", key)
		case i < last:
			t.Errorf("group %s is not in its place", key)
		}
		last = i
	}

	page := f.do(t, http.MethodGet, "/builds/"+hostile.Name(), "").want(t, http.StatusOK, "build page")
	wantIn(t, "build page", page.body, hostile.Slug(), hostile.Commit, `data-poll="/builds/`+hostile.Name()+`?part=body"`,
		`&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;`, "Reset", "Start and open")
	wantNotIn(t, "build page", page.body, "<script>alert(1)")

	if res := f.do(t, http.MethodGet, "/builds/bnosuch", ""); res.code != http.StatusNotFound || !strings.Contains(res.body, "No such build") {
		t.Errorf("page of an unknown build: %d %s", res.code, res.body)
	}
	if res := f.do(t, http.MethodGet, "/repos/-x/y", ""); res.code != http.StatusBadRequest {
		t.Errorf("page of an invalid repository: %d", res.code)
	}
	empty := f.do(t, http.MethodGet, "/repos/nobody/here", "").want(t, http.StatusOK, "repo without builds")
	wantIn(t, "empty repo page", empty.body, "No builds of this repository.")

	for path, loc := range map[string]string{
		"/webui/builds.html?repo=acme/app":                                "/repos/acme/app",
		"/webui/builds.html?repo=Acme/App&target_branch=16.0&branch=16.0": "/repos/acme/app?branch=16.0&target_branch=16.0",
		"/webui/builds.html?repo=acme/app&pr=5":                           "/repos/acme/app?pr=5",
		"/webui/builds.html":                                              "/",
		"/webui/build.html?name=" + main.Name():                           "/builds/" + main.Name(),
	} {
		res := f.do(t, http.MethodGet, path, "")
		if res.code != http.StatusMovedPermanently || res.header.Get("Location") != loc {
			t.Errorf("GET %s: %d to %q, want 301 to %q", path, res.code, res.header.Get("Location"), loc)
		}
	}
}

// TestBadgeLinks follows the links of the Python runboat's "Try me" badges,
// /builds?repo=...&target_branch=..., to the repository page filtered the
// same way.
func TestBadgeLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	main := f.createRawBuild(t, spec{repo: "acme/app", branch: "main"})
	v16 := f.createRawBuild(t, spec{repo: "acme/app", branch: "16.0"})
	pr5 := f.createRawBuild(t, spec{repo: "acme/app", branch: "main", pr: 5})
	pr7 := f.createRawBuild(t, spec{repo: "acme/app", branch: "16.0", pr: 7})

	for path, loc := range map[string]string{
		"/builds?repo=Acme/App&target_branch=16.0":      "/repos/acme/app?target_branch=16.0",
		"/builds?repo=acme/app&branch=main":             "/repos/acme/app?branch=main",
		"/builds?repo=acme/app&pr=5":                    "/repos/acme/app?pr=5",
		"/builds?repo=acme/app&target_branch=&branch=":  "/repos/acme/app",
		"/builds?repo=acme/app&target_branch=a%26b%3Dc": "/repos/acme/app?target_branch=a%26b%3Dc",
		"/builds": "/",
	} {
		res := f.do(t, http.MethodGet, path, "")
		if res.code != http.StatusTemporaryRedirect || res.header.Get("Location") != loc {
			t.Errorf("GET %s: %d to %q, want 307 to %q", path, res.code, res.header.Get("Location"), loc)
		}
	}
	for _, path := range []string{"/builds?repo=acme&target_branch=main", "/builds?repo=acme/app&pr=x", "/repos/acme/app?pr=0"} {
		res := f.do(t, http.MethodGet, path, "")
		if res.code != http.StatusBadRequest || !strings.Contains(res.body, "invalid") {
			t.Errorf("GET %s: %d %s, want 400 with the reason", path, res.code, res.body)
		}
	}

	for _, tc := range []struct {
		query    string
		in, out  []model.Ref
		wantPoll string
	}{
		{"", []model.Ref{main, v16, pr5, pr7}, nil, `data-poll="/repos/acme/app?part=body"`},
		{"?target_branch=16.0", []model.Ref{v16, pr7}, []model.Ref{main, pr5}, `data-poll="/repos/acme/app?target_branch=16.0&amp;part=body"`},
		{"?branch=main", []model.Ref{main}, []model.Ref{v16, pr5, pr7}, `data-poll="/repos/acme/app?branch=main&amp;part=body"`},
		{"?pr=5", []model.Ref{pr5}, []model.Ref{main, v16, pr7}, `data-poll="/repos/acme/app?pr=5&amp;part=body"`},
	} {
		res := f.do(t, http.MethodGet, "/repos/acme/app"+tc.query, "").want(t, http.StatusOK, "repo page"+tc.query)
		wantIn(t, "repo page"+tc.query, res.body, tc.wantPoll)
		for _, r := range tc.in {
			wantIn(t, "repo page"+tc.query, res.body, `data-build="`+r.Name()+`"`)
		}
		for _, r := range tc.out {
			wantNotIn(t, "repo page"+tc.query, res.body, `data-build="`+r.Name()+`"`)
		}
		if tc.query != "" {
			wantIn(t, "repo page"+tc.query, res.body, `href="/repos/acme/app">Show all builds`)
		}
	}
	// The polled body keeps the filter.
	res := f.do(t, http.MethodGet, "/repos/acme/app?branch=main&part=body", "").want(t, http.StatusOK, "filtered body")
	wantIn(t, "filtered body", res.body, `data-build="`+main.Name()+`"`)
	wantNotIn(t, "filtered body", res.body, `data-build="`+v16.Name()+`"`, "<html")
}

// createBuildName is the name of the build createBuild makes for a branch.
func (f *fixture) createBuildName(repo, branch string) string {
	return model.Ref{Repo: repo, TargetBranch: branch, Commit: sha(repo + branch + "0")}.Name()
}

func TestLiveLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stopped := f.createBuild(t, spec{repo: "acme/app", branch: "main"})
	failed := f.createBuild(t, spec{repo: "acme/app", branch: "main", pr: 2, init: model.InitFailed, reason: "ErrImagePull"})
	todo := f.createBuild(t, spec{repo: "acme/app", branch: "main", pr: 3, init: model.InitTodo})
	gone := f.createBuild(t, spec{repo: "acme/app", branch: "main", pr: 4})
	f.markUndeploying(t, gone.Name())

	// A GET changes nothing: link unfurlers, mail scanners and prefetchers
	// wake no build. The page starts it with a POST: its script at once,
	// or its button without a script.
	for range 2 {
		res := f.do(t, http.MethodGet, "/builds/"+stopped.Name()+"?live", "").want(t, http.StatusOK, "live on a stopped build")
		wantIn(t, "starting page", res.body, `data-live="/api/v1/builds/`+stopped.Name()+`"`, "data-autostart", "Starting", stopped.Slug(),
			`<form method="post" action="/builds/`+stopped.Name()+`?live">`)
		wantNotIn(t, "starting page of a stopped build", res.body, `http-equiv="refresh"`)
	}
	f.do(t, http.MethodHead, "/builds/"+stopped.Name()+"?live", "").want(t, http.StatusOK, "HEAD live")
	if calls := f.ops.Calls(); len(calls) != 0 {
		t.Errorf("operations %v after GETs, want none", calls)
	}
	if n := f.replicas(t, stopped.Name()); n != 0 {
		t.Errorf("the build has %d replicas after GETs of its live link, want 0", n)
	}
	res := f.do(t, http.MethodPost, "/builds/"+stopped.Name()+"?live", "")
	if loc := "/builds/" + stopped.Name() + "?live"; res.code != http.StatusSeeOther || res.header.Get("Location") != loc {
		t.Fatalf("POST live: %d to %q, want 303 to %q", res.code, res.header.Get("Location"), loc)
	}
	if calls := f.ops.Calls(); !slices.Equal(calls, []string{"start " + stopped.Name()}) {
		t.Errorf("operations %v, want the start of the build", calls)
	}
	if n := f.replicas(t, stopped.Name()); n != 1 {
		t.Errorf("the build has %d replicas after the POST, want 1", n)
	}
	// While it starts, the page without script reloads itself.
	if res := f.do(t, http.MethodGet, "/builds/"+stopped.Name()+"?live", ""); res.code == http.StatusOK {
		wantIn(t, "page of a starting build", res.body, `<noscript><meta http-equiv="refresh" content="3"></noscript>`)
		wantNotIn(t, "page of a starting build", res.body, "data-autostart")
	}
	f.waitStatus(t, stopped.Name(), model.StatusStarted)
	res = f.do(t, http.MethodGet, "/builds/"+stopped.Name()+"?live", "")
	if want := "http://" + stopped.Slug() + "." + testDomain; res.code != http.StatusFound || res.header.Get("Location") != want {
		t.Errorf("live on a started build: %d to %q, want 302 to %q", res.code, res.header.Get("Location"), want)
	}
	// A POST on a build that cannot start does nothing; the page says why.
	if res := f.do(t, http.MethodPost, "/builds/"+failed.Name()+"?live", ""); res.code != http.StatusSeeOther {
		t.Errorf("POST live on a failed build: %d, want 303", res.code)
	}
	if res := f.do(t, http.MethodPost, "/builds/bnosuch?live", ""); res.code != http.StatusNotFound {
		t.Errorf("POST live on an unknown build: %d, want 404", res.code)
	}
	if res := f.do(t, http.MethodPost, "/builds/"+stopped.Name(), ""); res.code != http.StatusMethodNotAllowed && res.code != http.StatusBadRequest {
		t.Errorf("POST on a build page without live: %d, want it refused", res.code)
	}

	res = f.do(t, http.MethodGet, "/builds/"+failed.Name()+"?live", "").want(t, http.StatusOK, "live on a failed build")
	wantIn(t, "failed page", res.body, "Build failed", "ErrImagePull", `href="/api/v1/builds/`+failed.Name()+`/init-log"`)
	wantNotIn(t, "failed page", res.body, "data-live=")

	res = f.do(t, http.MethodGet, "/builds/"+todo.Name()+"?live", "").want(t, http.StatusOK, "live on an initializing build")
	wantIn(t, "initializing page", res.body, `data-live="`, "being initialized")

	res = f.do(t, http.MethodGet, "/builds/"+gone.Name()+"?live", "")
	if res.code != http.StatusGone || !strings.Contains(res.body, "being undeployed") {
		t.Errorf("live on an undeploying build: %d %s", res.code, res.body)
	}
	res = f.do(t, http.MethodGet, "/builds/bnosuch?live", "")
	if res.code != http.StatusNotFound || !strings.Contains(res.body, "There is no build named bnosuch") {
		t.Errorf("live on an unknown build: %d %s", res.code, res.body)
	}
	if calls := f.ops.Calls(); len(calls) != 1 {
		t.Errorf("operations %v, want only the first start", calls)
	}
}
