package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"runboat.dev/shared/model"
)

const (
	testToken  = "ghp-test-token"
	branchSHA  = "1111111111111111111111111111111111111111"
	featureSHA = "2222222222222222222222222222222222222222"
	prSHA      = "3333333333333333333333333333333333333333"
)

// fakeGitHub answers the GitHub REST calls of the trigger endpoints.
type fakeGitHub struct {
	mu    sync.Mutex
	auths []string
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.auths = append(g.auths, r.Header.Get("Authorization"))
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	ref := func(sha string) {
		_ = json.NewEncoder(w).Encode(map[string]any{"ref": strings.TrimPrefix(r.URL.Path, "/repos/acme/app/git/ref/"), "object": map[string]any{"sha": sha, "type": "commit"}})
	}
	switch r.URL.Path {
	case "/repos/acme/app/git/ref/heads/main", "/repos/unsupported/repo/git/ref/heads/main":
		ref(branchSHA)
	case "/repos/acme/app/git/ref/heads/feature/x":
		ref(featureSHA)
	case "/repos/acme/app/pulls/7":
		_ = json.NewEncoder(w).Encode(map[string]any{
			"number": 7,
			"head":   map[string]any{"sha": prSHA, "ref": "fix", "repo": map[string]any{"full_name": "someone/app"}},
			"base":   map[string]any{"ref": "main", "repo": map[string]any{"full_name": "Acme/App"}},
		})
	case "/repos/acme/app/pulls/8":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"message":"database at 10.9.8.7 is down"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"Not Found"}`))
	}
}

func TestAPITrigger(t *testing.T) {
	t.Parallel()
	gh := &fakeGitHub{}
	ghSrv := httptest.NewServer(gh)
	t.Cleanup(ghSrv.Close)
	f := newFixture(t, func(o *Options) {
		o.GitHubAPIURL = ghSrv.URL
		o.GitHubToken = testToken
	})
	admin := testUser + ":" + testPasswd

	// A branch.
	// As the Python runboat: 200 with the body null, whether the build is
	// new or not.
	res := f.do(t, http.MethodPost, "/api/v1/builds/trigger/branch?repo=Acme/App&branch=main", admin).want(t, http.StatusOK, "trigger branch")
	wantNull(t, "trigger branch", res)
	want := model.Ref{Repo: "acme/app", TargetBranch: "main", Commit: branchSHA}
	if loc := res.header.Get("Location"); loc != testBase+"/builds/"+want.Name() {
		t.Errorf("Location = %q", loc)
	}
	b := f.getBuild(t, want.Name())
	if b.CommitInfo.Repo != "acme/app" || b.CommitInfo.TargetBranch != "main" || b.CommitInfo.PR != nil ||
		b.CommitInfo.GitCommit != branchSHA || b.Status != model.StatusInitializing {
		t.Errorf("triggered build %+v", b)
	}
	// Again: the build exists.
	wantNull(t, "trigger again", f.do(t, http.MethodPost, "/api/v1/builds/trigger/branch?repo=acme/app&branch=main", admin).want(t, http.StatusOK, "trigger again"))
	if res := f.do(t, http.MethodGet, "/api/v1/builds?repo=acme/app", "").body; strings.Count(res, `"name"`) != 1 {
		t.Errorf("after a second trigger: %s, want the one build", res)
	}
	// A branch with a slash.
	f.do(t, http.MethodPost, "/api/v1/builds/trigger/branch?repo=acme/app&branch=feature/x", admin).want(t, http.StatusOK, "trigger feature/x")
	if b := f.getBuild(t, (model.Ref{Repo: "acme/app", TargetBranch: "feature/x", Commit: featureSHA}).Name()); b.CommitInfo.GitCommit != featureSHA {
		t.Errorf("feature/x build %+v", b)
	}

	// A pull request: its target branch and head come from GitHub.
	wantNull(t, "trigger pr", f.do(t, http.MethodPost, "/api/v1/builds/trigger/pr?repo=acme/app&pr=7", admin).want(t, http.StatusOK, "trigger pr"))
	wantPR := model.Ref{Repo: "acme/app", TargetBranch: "main", PR: 7, Commit: prSHA}
	if b := f.getBuild(t, wantPR.Name()); b.CommitInfo.PR == nil || *b.CommitInfo.PR != 7 || b.CommitInfo.TargetBranch != "main" {
		t.Errorf("PR build %+v", b.CommitInfo)
	}

	for _, tc := range []struct {
		path   string
		code   int
		detail string
	}{
		{"/api/v1/builds/trigger/branch?repo=acme/app&branch=gone", http.StatusNotFound, "not found on GitHub"},
		{"/api/v1/builds/trigger/pr?repo=acme/app&pr=99", http.StatusNotFound, "not found on GitHub"},
		{"/api/v1/builds/trigger/pr?repo=acme/app&pr=8", http.StatusBadGateway, "failed to ask GitHub for the head commit"},
		{"/api/v1/builds/trigger/branch?repo=unsupported/repo&branch=main", http.StatusBadRequest, "no build is configured for this repository and branch"},
		{"/api/v1/builds/trigger/branch?repo=acme/app", http.StatusBadRequest, "missing branch"},
		{"/api/v1/builds/trigger/branch?branch=main", http.StatusBadRequest, "missing repo"},
		{"/api/v1/builds/trigger/branch?repo=acme&branch=main", http.StatusBadRequest, `invalid repo "acme": want owner/name`},
		{"/api/v1/builds/trigger/pr?repo=acme/app", http.StatusBadRequest, "missing pr"},
		{"/api/v1/builds/trigger/pr?repo=acme/app&pr=seven", http.StatusBadRequest, `invalid pr "seven": want a pull request number`},
		{"/api/v1/builds/trigger/pr?pr=0", http.StatusBadRequest, `missing repo; invalid pr "0": want a pull request number`},
	} {
		res := f.do(t, http.MethodPost, tc.path, admin)
		if res.code != tc.code || res.detail(t) != tc.detail {
			t.Errorf("POST %s: %d %s, want %d %q", tc.path, res.code, res.body, tc.code, tc.detail)
		}
		if strings.Contains(res.body, "10.9.8.7") || strings.Contains(res.body, ghSrv.URL) {
			t.Errorf("POST %s shows internal details: %s", tc.path, res.body)
		}
	}
	if !strings.Contains(f.log.String(), "10.9.8.7") {
		t.Errorf("the GitHub failure is not in the log:\n%s", f.log.String())
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	for _, a := range gh.auths {
		if a != "Bearer "+testToken {
			t.Errorf("GitHub call with Authorization %q, want the token", a)
		}
	}
}
