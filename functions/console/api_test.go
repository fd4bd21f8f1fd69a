package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/localcluster"
)

// These tests run the console on the local control plane: real Deployments,
// rolled out by the real Deployment controller.

func TestAPIStatusAndRepos(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.createBuild(t, spec{repo: "acme/app", branch: "main", init: model.InitTodo})
	f.createBuild(t, spec{repo: "acme/app", branch: "16.0", init: model.InitStarted})
	f.createBuild(t, spec{repo: "acme/app", branch: "main", pr: 3, init: model.InitFailed, reason: "Error (exit code 1)"})
	f.createBuild(t, spec{repo: "other/lib", branch: "main"})
	gone := f.createBuild(t, spec{repo: "gone/repo", branch: "main"})
	f.markUndeploying(t, gone.Name())
	f.startedBuild(t, spec{repo: "acme/app", branch: "main", pr: 4})

	var got counts
	f.do(t, http.MethodGet, "/api/v1/status", "").want(t, http.StatusOK, "status").json(t, &got)
	want := counts{
		Deployed: 5, MaxDeployed: 10, Failed: 1, Stopped: 1, Started: 1, MaxStarted: 6,
		ToInitialize: 1, Initializing: 1, MaxInitializing: 2, Undeploying: 1,
	}
	if got != want {
		t.Errorf("status = %+v, want %+v", got, want)
	}

	var repos []repoJSON
	f.do(t, http.MethodGet, "/api/v1/repos", "").want(t, http.StatusOK, "repos").json(t, &repos)
	wantRepos := []repoJSON{
		{Name: "acme/app", Link: "https://github.com/acme/app"},
		{Name: "gone/repo", Link: "https://github.com/gone/repo"},
		{Name: "other/lib", Link: "https://github.com/other/lib"},
	}
	if !slices.Equal(repos, wantRepos) {
		t.Errorf("repos = %+v, want %+v", repos, wantRepos)
	}
}

func TestAPIBuildsFiltersAndOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mainOld := f.createBuild(t, spec{repo: "acme/app", branch: "main", commit: sha("old")})
	// Creation times have a resolution of one second: the newer build of
	// main must be created in a later second.
	time.Sleep(1100 * time.Millisecond)
	mainNew := f.createBuild(t, spec{repo: "acme/app", branch: "main", commit: sha("new")})
	v16 := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", init: model.InitFailed})
	pr5 := f.createBuild(t, spec{repo: "acme/app", branch: "main", pr: 5})
	pr12 := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", pr: 12})
	lib := f.createBuild(t, spec{repo: "other/lib", branch: "main"})

	names := func(query string) []string {
		t.Helper()
		var bs []buildJSON
		f.do(t, http.MethodGet, "/api/v1/builds"+query, "").want(t, http.StatusOK, "builds"+query).json(t, &bs)
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = b.Name
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []model.Ref
	}{
		// Repository descending; branch builds first, then pull requests
		// by descending number; target branch descending; newest first.
		{"", []model.Ref{lib, mainNew, mainOld, v16, pr12, pr5}},
		{"?repo=ACME/App", []model.Ref{mainNew, mainOld, v16, pr12, pr5}},
		{"?target_branch=main", []model.Ref{lib, mainNew, mainOld, pr5}},
		{"?branch=main", []model.Ref{lib, mainNew, mainOld}},
		{"?repo=acme/app&branch=main", []model.Ref{mainNew, mainOld}},
		{"?pr=12", []model.Ref{pr12}},
		{"?repo=acme/app&target_branch=16.0", []model.Ref{v16, pr12}},
		{"?status=failed", []model.Ref{v16}},
		{"?repo=acme/app&status=stopped&target_branch=main", []model.Ref{mainNew, mainOld, pr5}},
		{"?repo=nobody/here", nil},
		{"?repo=&branch=", []model.Ref{lib, mainNew, mainOld, v16, pr12, pr5}}, // empty is no filter
		{"?unknown=1", []model.Ref{lib, mainNew, mainOld, v16, pr12, pr5}},
	} {
		want := make([]string, len(tc.want))
		for i, r := range tc.want {
			want[i] = r.Name()
		}
		if got := names(tc.query); !slices.Equal(got, want) {
			t.Errorf("GET /api/v1/builds%s = %v, want %v", tc.query, got, want)
		}
	}
}

func TestAPIBuildsBadParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		query string
		want  []string // substrings of the reason
	}{
		{"?pr=abc", []string{`invalid pr "abc"`}},
		{"?pr=0", []string{`invalid pr "0"`}},
		{"?pr=-3", []string{`invalid pr "-3"`}},
		{"?status=running", []string{`invalid status "running"`, "stopped"}},
		{"?repo=noslash", []string{`invalid repo "noslash"`}},
		{"?repo=a/b/c", []string{`invalid repo "a/b/c"`}},
		{"?branch=%FF", []string{"invalid branch"}},
		{"?target_branch=" + strings.Repeat("b", 1025), []string{"invalid target_branch"}},
		{"?pr=x&status=y", []string{`invalid pr "x"`, `invalid status "y"`}},
	} {
		res := f.do(t, http.MethodGet, "/api/v1/builds"+tc.query, "")
		if res.code != http.StatusBadRequest {
			t.Errorf("GET /api/v1/builds%.40s: status %d, want 400; body %s", tc.query, res.code, res.body)
			continue
		}
		d := res.detail(t)
		for _, w := range tc.want {
			if !strings.Contains(d, w) {
				t.Errorf("GET /api/v1/builds%.40s: reason %q does not say %q", tc.query, d, w)
			}
		}
	}
}

func TestAPIBuild(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pr := f.createBuild(t, spec{repo: "acme/app", branch: "16.0/fix", pr: 7, commit: sha("pr7")})
	br := f.createBuild(t, spec{repo: "acme/app", branch: "main"})

	res := f.do(t, http.MethodGet, "/api/v1/builds/"+pr.Name(), "").want(t, http.StatusOK, "PR build")
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var b buildJSON
	res.json(t, &b)
	slug := pr.Slug()
	if b.Name != pr.Name() || b.CommitInfo.Repo != "acme/app" || b.CommitInfo.TargetBranch != "16.0/fix" ||
		b.CommitInfo.PR == nil || *b.CommitInfo.PR != 7 || b.CommitInfo.GitCommit != pr.Commit {
		t.Errorf("commit_info = %+v of %+v, want the PR's", b.CommitInfo, b)
	}
	for _, c := range []struct{ field, got, want string }{
		{"deploy_link", b.DeployLink, "http://" + slug + "." + testDomain},
		{"deploy_link_mailhog", b.DeployLinkMailhog, "http://" + slug + ".mail." + testDomain},
		{"repo_target_branch_link", b.RepoTargetBranchLink, "https://github.com/acme/app/tree/16.0/fix"},
		{"repo_commit_link", b.RepoCommitLink, "https://github.com/acme/app/pull/7/commits/" + pr.Commit},
		{"webui_link", b.WebUILink, testBase + "/builds/" + pr.Name()},
		{"status", string(b.Status), "stopped"},
		{"slug", b.Slug, slug},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if b.RepoPRLink == nil || *b.RepoPRLink != "https://github.com/acme/app/pull/7" {
		t.Errorf("repo_pr_link = %v", b.RepoPRLink)
	}
	if time.Since(b.Created) > 5*time.Minute || b.LastScaled.IsZero() {
		t.Errorf("created %v, last_scaled %v", b.Created, b.LastScaled)
	}

	// A branch build has no PR: null, as the Python runboat's.
	res = f.do(t, http.MethodGet, "/api/v1/builds/"+br.Name(), "").want(t, http.StatusOK, "branch build")
	for _, w := range []string{`"pr":null`, `"repo_pr_link":null`, `"repo_commit_link":"https://github.com/acme/app/commit/` + br.Commit + `"`} {
		if !strings.Contains(res.body, w) {
			t.Errorf("branch build JSON lacks %s: %s", w, res.body)
		}
	}

	// In a list, null fields are left out, as the Python runboat's (its
	// list endpoint excludes None).
	list := f.do(t, http.MethodGet, "/api/v1/builds?repo=acme/app", "").want(t, http.StatusOK, "list")
	if strings.Contains(list.body, "null") || strings.Count(list.body, `"repo_pr_link":`) != 1 || strings.Count(list.body, `"pr":7`) != 1 {
		t.Errorf("list items keep null fields or lose others: %s", list.body)
	}
	var items []buildJSON
	list.json(t, &items)
	if len(items) != 2 || items[0].Name != br.Name() || items[0].CommitInfo.GitCommit != br.Commit || items[1].RepoPRLink == nil {
		t.Errorf("list items %+v", items)
	}

	for _, name := range []string{"bnosuchbuild", "a,b", "x%3Dy", strings.Repeat("z", 70)} {
		res := f.do(t, http.MethodGet, "/api/v1/builds/"+name, "")
		if res.code != http.StatusNotFound || res.detail(t) != "Not Found" {
			t.Errorf("GET unknown build %q: %d %s, want 404 Not Found", name, res.code, res.body)
		}
	}
}

func TestAPILogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	failed := f.createBuild(t, spec{
		repo: "acme/app", branch: "main", init: model.InitFailed, reason: "Error (exit code 3)",
		initLog: "cloning\n\x1b[31mERROR\x1b[0m: module x not found <b>\n",
	})
	bare := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", init: model.InitFailed})
	stopped := f.createBuild(t, spec{repo: "acme/app", branch: "17.0"})

	res := f.do(t, http.MethodGet, "/api/v1/builds/"+failed.Name()+"/init-log", "").want(t, http.StatusOK, "init log")
	if !strings.Contains(res.body, "<pre>\ncloning\n<span class=\"ansi-fg-31\">ERROR</span>: module x not found &lt;b&gt;\n</pre>") || strings.Contains(res.body, "\x1b") || strings.Contains(res.body, "<b>") {
		t.Errorf("init log = %q, want the evidence escaped, its colours rendered", res.body)
	}
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'sha256-") || strings.Contains(csp, "script-src") {
		t.Errorf("init log Content-Security-Policy %q, want its style only", csp)
	}
	if ct := res.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("init log Content-Type = %q", ct)
	}
	if b := f.getBuild(t, failed.Name()); b.InitReason != "Error (exit code 3)" || b.Status != model.StatusFailed {
		t.Errorf("failed build: status %s, reason %q", b.Status, b.InitReason)
	}

	for _, p := range []string{
		"/api/v1/builds/" + bare.Name() + "/init-log",
		"/api/v1/builds/" + stopped.Name() + "/init-log",
		"/api/v1/builds/" + stopped.Name() + "/log",
	} {
		res := f.do(t, http.MethodGet, p, "")
		if res.code != http.StatusNotFound || res.detail(t) != "No log found." {
			t.Errorf("GET %s: %d %s, want 404 No log found.", p, res.code, res.body)
		}
	}
	// The log of a started build, from its pod, through the API server
	// (the local cluster's kwok serves it).
	started := f.startedBuild(t, spec{repo: "acme/app", branch: "18.0"})
	res = f.do(t, http.MethodGet, "/api/v1/builds/"+started.Name()+"/log", "").want(t, http.StatusOK, "log of a started build")
	if !strings.Contains(res.body, localcluster.WebLogLine) || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
		t.Errorf("log of a started build: %s %q, want the pod's log, with %q", res.header.Get("Content-Type"), res.body, localcluster.WebLogLine)
	}
	// A container the kubelet has no log of (it has not started, says the
	// local cluster's kwok): no log, as runboat says.
	nolog := f.createRawBuild(t, spec{repo: "acme/app", branch: "19.0", container: "nolog"})
	f.do(t, http.MethodPost, "/api/v1/builds/"+nolog.Name()+"/start", "").want(t, http.StatusOK, "start")
	f.waitStatus(t, nolog.Name(), model.StatusStarted)
	if res := f.do(t, http.MethodGet, "/api/v1/builds/"+nolog.Name()+"/log", ""); res.code != http.StatusNotFound {
		t.Errorf("log of a container without one: %d %s, want 404", res.code, res.body)
	}
	// A pod on a node whose kubelet cannot be reached: the log exists but
	// the API server cannot give it: 502 with a short reason, never 500.
	node := f.unreachableNode(t)
	cut := f.createRawBuild(t, spec{repo: "acme/app", branch: "20.0", node: node})
	f.do(t, http.MethodPost, "/api/v1/builds/"+cut.Name()+"/start", "").want(t, http.StatusOK, "start")
	f.waitStatus(t, cut.Name(), model.StatusStarted)
	res = f.do(t, http.MethodGet, "/api/v1/builds/"+cut.Name()+"/log", "")
	if res.code != http.StatusBadGateway || res.detail(t) != "the log could not be read from the cluster" {
		t.Errorf("log that cannot be read: %d %s, want 502", res.code, res.body)
	}

	for _, p := range []string{"/api/v1/builds/bnosuch/init-log", "/api/v1/builds/bnosuch/log"} {
		if res := f.do(t, http.MethodGet, p, ""); res.code != http.StatusNotFound || res.detail(t) != "Not Found" {
			t.Errorf("GET %s: %d %s, want 404 Not Found", p, res.code, res.body)
		}
	}
}

func TestAPIStartStop(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.createBuild(t, spec{repo: "acme/app", branch: "main"})
	failed := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", init: model.InitFailed})
	name := ref.Name()

	res := f.do(t, http.MethodPost, "/api/v1/builds/"+name+"/start", "").want(t, http.StatusOK, "start")
	if strings.TrimSpace(res.body) != "null" {
		t.Errorf("start answered %q, want null", res.body)
	}
	f.waitStatus(t, name, model.StatusStarted)
	// Starting a started build does nothing.
	f.do(t, http.MethodPost, "/api/v1/builds/"+name+"/start", "").want(t, http.StatusOK, "start again")
	f.do(t, http.MethodPost, "/api/v1/builds/"+name+"/stop", "").want(t, http.StatusOK, "stop")
	f.waitStatus(t, name, model.StatusStopped)
	// Neither does stopping a stopped build, nor starting a failed one.
	f.do(t, http.MethodPost, "/api/v1/builds/"+name+"/stop", "").want(t, http.StatusOK, "stop again")
	f.do(t, http.MethodPost, "/api/v1/builds/"+failed.Name()+"/start", "").want(t, http.StatusOK, "start failed build")
	if got, want := f.ops.Calls(), []string{"start " + name, "stop " + name}; !slices.Equal(got, want) {
		t.Errorf("operations = %v, want %v", got, want)
	}
	if b := f.getBuild(t, failed.Name()); b.Status != model.StatusFailed {
		t.Errorf("failed build became %s", b.Status)
	}

	for _, op := range []string{"start", "stop", "reset"} {
		if res := f.do(t, http.MethodPost, "/api/v1/builds/bnosuch/"+op, ""); res.code != http.StatusNotFound {
			t.Errorf("%s of an unknown build: %d %s, want 404", op, res.code, res.body)
		}
	}
	if res := f.do(t, http.MethodGet, "/api/v1/builds/"+name+"/start", ""); res.code != http.StatusMethodNotAllowed {
		t.Errorf("GET start: %d, want 405", res.code)
	}
}

func TestAPIResetLimit(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Minute
	f := newFixture(t, func(o *Options) { o.ResetInterval = interval })
	ref := f.createBuild(t, spec{repo: "acme/app", branch: "main", init: model.InitFailed, reason: "Error", initLog: "boom\n"})
	name := ref.Name()
	f.do(t, http.MethodGet, "/api/v1/builds/"+name+"/init-log", "").want(t, http.StatusOK, "init log before the reset")
	reset := func() response {
		return f.do(t, http.MethodPost, "/api/v1/builds/"+name+"/reset", "")
	}

	reset().want(t, http.StatusOK, "first reset")
	b := f.getBuild(t, name)
	if b.Status != model.StatusInitializing || b.InitReason != "" {
		t.Errorf("after reset: status %s, reason %q; want initializing without reason", b.Status, b.InitReason)
	}
	// The evidence of the failure is gone with it.
	f.do(t, http.MethodGet, "/api/v1/builds/"+name+"/init-log", "").want(t, http.StatusNotFound, "init log after the reset")
	if b.LastReset == nil || !b.LastReset.Equal(f.clock.Now()) {
		t.Errorf("last_reset = %v, want %v", b.LastReset, f.clock.Now())
	}
	d, err := f.h.getDeployment(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Annotations[model.AnnotationLastReset]; got != "2026-03-01T12:00:00Z" {
		t.Errorf("annotation %s = %q", model.AnnotationLastReset, got)
	}

	res := reset()
	if res.code != http.StatusTooManyRequests || res.header.Get("Retry-After") != "600" {
		t.Fatalf("second reset: %d Retry-After %q %s, want 429 after 600 s", res.code, res.header.Get("Retry-After"), res.body)
	}
	if d := res.detail(t); !strings.Contains(d, "reset less than 10m0s ago") {
		t.Errorf("429 reason %q", d)
	}
	f.clock.SetTime(f.clock.Now().Add(interval - time.Second))
	if res := reset(); res.code != http.StatusTooManyRequests || res.header.Get("Retry-After") != "1" {
		t.Errorf("reset 1 s early: %d Retry-After %q", res.code, res.header.Get("Retry-After"))
	}
	f.clock.SetTime(f.clock.Now().Add(time.Second))
	reset().want(t, http.StatusOK, "reset after the interval")
	if got := f.ops.Calls(); !slices.Equal(got, []string{"reset " + name, "reset " + name}) {
		t.Errorf("operations = %v, want two resets", got)
	}

	// Of concurrent resets, exactly one wins: the record is an optimistic
	// write.
	other := f.createBuild(t, spec{repo: "acme/app", branch: "16.0"}).Name()
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			codes[i] = f.do(t, http.MethodPost, "/api/v1/builds/"+other+"/reset", "").code
		})
	}
	wg.Wait()
	slices.Sort(codes)
	want := append([]int{http.StatusOK}, slices.Repeat([]int{http.StatusTooManyRequests}, n-1)...)
	if !slices.Equal(codes, want) {
		t.Errorf("concurrent resets answered %v, want one 200 and %d 429", codes, n-1)
	}

	gone := f.createBuild(t, spec{repo: "acme/app", branch: "17.0"}).Name()
	f.markUndeploying(t, gone)
	if res := f.do(t, http.MethodPost, "/api/v1/builds/"+gone+"/reset", ""); res.code != http.StatusConflict {
		t.Errorf("reset of an undeploying build: %d %s, want 409", res.code, res.body)
	}
}

func TestAPIResetIgnoresAnnotationsOfOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A broken or ancient record does not block a reset.
	for i, v := range []string{"not a time", "2001-01-01T00:00:00Z"} {
		name := f.createBuild(t, spec{repo: "acme/app", branch: "b" + strconv.Itoa(i), lastReset: v}).Name()
		f.do(t, http.MethodPost, "/api/v1/builds/"+name+"/reset", "").want(t, http.StatusOK, "reset with last-reset "+v)
	}
}

func TestAPIAdminAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.createBuild(t, spec{repo: "acme/app", branch: "main"})
	name := ref.Name()
	for _, ep := range []struct{ method, path string }{
		{http.MethodDelete, "/api/v1/builds/" + name},
		{http.MethodDelete, "/api/v1/builds?repo=acme/app"},
		{http.MethodPost, "/api/v1/builds/trigger/branch?repo=acme/app&branch=main"},
		{http.MethodPost, "/api/v1/builds/trigger/pr?repo=acme/app&pr=1"},
	} {
		for _, auth := range []string{"", testUser + ":wrong", "root:" + testPasswd, testUser + ":" + testPasswd + "x", ":"} {
			res := f.do(t, ep.method, ep.path, auth)
			if res.code != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %d, want 401", ep.method, ep.path, auth, res.code)
				continue
			}
			if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s %s: WWW-Authenticate %q", ep.method, ep.path, res.header.Get("WWW-Authenticate"))
			}
			if strings.Contains(res.body, testPasswd) {
				t.Errorf("401 body shows the password: %s", res.body)
			}
		}
	}
	if calls := f.ops.Calls(); len(calls) != 0 {
		t.Fatalf("refused requests acted: %v", calls)
	}
	if b := f.getBuild(t, name); b.Status != model.StatusStopped {
		t.Fatalf("build is %s after refused undeploys", b.Status)
	}
	// Start, stop and reset are open.
	f.do(t, http.MethodPost, "/api/v1/builds/"+name+"/stop", "").want(t, http.StatusOK, "stop without credentials")
}

func TestAPIUndeploy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := testUser + ":" + testPasswd
	one := f.createBuild(t, spec{repo: "acme/app", branch: "main"}).Name()
	f.do(t, http.MethodDelete, "/api/v1/builds/"+one, admin).want(t, http.StatusOK, "undeploy")
	if b := f.getBuild(t, one); b.Status != model.StatusUndeploying {
		t.Errorf("undeployed build is %s, want undeploying (its finalizer keeps it for the cleanup)", b.Status)
	}
	f.do(t, http.MethodDelete, "/api/v1/builds/"+one, admin).want(t, http.StatusOK, "undeploy again")
	if res := f.do(t, http.MethodDelete, "/api/v1/builds/bnosuch", admin); res.code != http.StatusNotFound {
		t.Errorf("undeploy unknown: %d", res.code)
	}

	pr := f.createBuild(t, spec{repo: "acme/app", branch: "main", pr: 9}).Name()
	v16 := f.createBuild(t, spec{repo: "acme/app", branch: "16.0"}).Name()
	lib := f.createBuild(t, spec{repo: "other/lib", branch: "main"}).Name()

	res := f.do(t, http.MethodDelete, "/api/v1/builds", admin)
	if res.code != http.StatusBadRequest || !strings.Contains(res.detail(t), "at least one of") {
		t.Errorf("bulk undeploy without filter: %d %s, want 400", res.code, res.body)
	}
	if res := f.do(t, http.MethodDelete, "/api/v1/builds?status=stopped", admin); res.code != http.StatusBadRequest {
		t.Errorf("bulk undeploy by status: %d %s, want 400", res.code, res.body)
	}
	if res := f.do(t, http.MethodDelete, "/api/v1/builds?pr=x", admin); res.code != http.StatusBadRequest {
		t.Errorf("bulk undeploy with a bad pr: %d %s, want 400", res.code, res.body)
	}

	// As the Python runboat: 200 with the body null.
	wantNull(t, "bulk undeploy", f.do(t, http.MethodDelete, "/api/v1/builds?repo=acme/app&target_branch=main", admin).want(t, http.StatusOK, "bulk undeploy"))
	for n, want := range map[string]model.Status{pr: model.StatusUndeploying, v16: model.StatusStopped, lib: model.StatusStopped} {
		if b := f.getBuild(t, n); b.Status != want {
			t.Errorf("build %s is %s, want %s", n, b.Status, want)
		}
	}
	wantNull(t, "bulk undeploy repo", f.do(t, http.MethodDelete, "/api/v1/builds?repo=acme/app", admin).want(t, http.StatusOK, "bulk undeploy repo"))
	if b := f.getBuild(t, v16); b.Status != model.StatusUndeploying {
		t.Errorf("build %s is %s after the undeploy of its repository, want undeploying", v16, b.Status)
	}
	if b := f.getBuild(t, lib); b.Status != model.StatusStopped {
		t.Errorf("build of another repository is %s", b.Status)
	}
}

// TestAPIReadsTheClusterEachTime proves there is no cache: a change made
// behind the console's back shows at once.
func TestAPIReadsTheClusterEachTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.createBuild(t, spec{repo: "acme/app", branch: "main", init: model.InitStarted})
	if b := f.getBuild(t, ref.Name()); b.Status != model.StatusInitializing {
		t.Fatalf("status %s", b.Status)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"failed"}}}`, model.AnnotationInitStatus)
	if _, err := f.env.Client.AppsV1().Deployments(f.env.Namespace).Patch(context.Background(), f.deploymentName(t, ref.Name()),
		"application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if b := f.getBuild(t, ref.Name()); b.Status != model.StatusFailed {
		t.Errorf("status after the change %s, want failed", b.Status)
	}
	var bs []buildJSON
	f.do(t, http.MethodGet, "/api/v1/builds?status=failed", "").want(t, http.StatusOK, "list").json(t, &bs)
	if len(bs) != 1 {
		t.Errorf("failed builds: %d, want 1", len(bs))
	}
}

// TestAPIPaginates lists more builds than a page holds.
func TestAPIPaginates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := kube.PageSize + 3
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			f.createRawBuild(t, spec{repo: "acme/app", branch: "b" + strconv.Itoa(i)})
		})
	}
	wg.Wait()
	var got counts
	f.do(t, http.MethodGet, "/api/v1/status", "").want(t, http.StatusOK, "status").json(t, &got)
	if got.Deployed != n || got.Stopped != n {
		t.Errorf("status counts %d deployed, %d stopped; want %d", got.Deployed, got.Stopped, n)
	}
	var bs []buildJSON
	f.do(t, http.MethodGet, "/api/v1/builds?repo=acme/app", "").want(t, http.StatusOK, "list").json(t, &bs)
	if len(bs) != n {
		t.Errorf("listed %d builds, want %d", len(bs), n)
	}
}

func TestAPIRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/api/v1/nothing", http.StatusNotFound},
		{http.MethodPut, "/api/v1/builds/x/start", http.StatusMethodNotAllowed},
		{http.MethodPost, "/api/v1/status", http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/v1/builds/trigger/branch", http.StatusMethodNotAllowed},
	} {
		if res := f.do(t, tc.method, tc.path, ""); res.code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, res.code, tc.code)
		}
	}
	// The query of a URL is never taken for a build name.
	if res := f.do(t, http.MethodGet, "/api/v1/builds/"+url.PathEscape("b?x=1"), ""); res.code != http.StatusNotFound {
		t.Errorf("escaped name: %d", res.code)
	}
}

// unreachableNode adds a Ready node whose kubelet port nothing listens on
// (kwok runs its pods, but no log can be read from it), removed after the
// test.
func (f *fixture) unreachableNode(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	nodes := f.env.Client.CoreV1().Nodes()
	n, err := nodes.Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "unreachable-" + f.env.Namespace,
			// One of kwok's, which makes it Ready.
			Annotations: map[string]string{localcluster.FakeNodeAnnotation: localcluster.FakeNodeAnnotationValue},
		},
		// The scheduler puts no pod of another test there; the test's own
		// pod names the node.
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "runboat.dev/unreachable", Effect: corev1.TaintEffectNoSchedule}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nodes.Delete(context.Background(), n.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("failed to remove node %s: %v", n.Name, err)
		}
	})
	e2e.Wait(t, "the node to be ready", func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	// Port 1 of the loopback: nothing listens there.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = 1
		_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n.Name
}
