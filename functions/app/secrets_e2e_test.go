package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"runboat.dev/shared/config"
)

// Known secret values: none may appear in what the function logs, answers
// or records.
const (
	secretToken    = "ghp_leakcheckTOKEN0123456789"
	secretPasswd   = "adm-leakcheck-PASSWD-42"
	secretBuildEnv = "pg-leakcheck-BUILDSECRET-7"
)

var secretValues = []string{testSecret, secretToken, secretPasswd, secretBuildEnv}

// TestE2ESecretsNeverLeak runs the function's paths that log or answer,
// good and bad requests, with known secrets in its configuration, and
// checks that no secret appears in its log, its responses (bodies and
// headers) or the Events it records; then that configuration errors do
// not quote them either.
func TestE2ESecretsNeverLeak(t *testing.T) {
	h, env, out := newFunctionWithSettings(t, nil, "", map[string]string{
		"RUNBOAT_GITHUB_TOKEN":            secretToken,
		"RUNBOAT_API_ADMIN_PASSWD":        secretPasswd,
		"RUNBOAT_BUILD_SECRET_ENV":        `{"PGPASSWORD": "` + secretBuildEnv + `"}`,
		"RUNBOAT_DISABLE_COMMIT_STATUSES": "false",
	})
	var answers []string
	record := func(what string, w *httptest.ResponseRecorder) {
		b, err := json.Marshal(w.Header())
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, what+" "+w.Body.String()+" "+string(b))
	}
	// Deliveries: a new build (its init Job launched by the pass, the
	// commit status posted to an unreachable GitHub with the token), the
	// same again, a bad signature, a malformed one.
	record("push", send(t, h, "push", "push.branch.json", "d1"))
	record("push again", send(t, h, "push", "push.branch.json", "d2"))
	bad := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(`{"zen": "x"}`))
	bad.Header.Set("X-GitHub-Event", "ping")
	bad.Header.Set("X-Hub-Signature-256", "sha256=00")
	record("bad signature", serve(h, bad, ""))
	malformed := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(`{`))
	malformed.Header.Set("X-GitHub-Event", "push")
	record("malformed", serve(h, malformed, ""))

	name := theBuild(t, env).Labels["runboat/build"]
	for _, r := range []struct{ method, path, auth string }{
		{http.MethodGet, "/", ""},
		{http.MethodGet, "/repos/codertocat/hello-world", ""},
		{http.MethodGet, "/builds/" + name, ""},
		{http.MethodGet, "/api/v1/builds", ""},
		{http.MethodGet, "/api/v1/builds/" + name, ""},
		{http.MethodGet, "/api/v1/builds/" + name + "/init-log", ""},
		{http.MethodGet, "/api/v1/status", ""},
		{http.MethodGet, "/openapi.json", ""},
		{http.MethodPost, "/api/v1/builds/" + name + "/start", ""},
		{http.MethodDelete, "/api/v1/builds/" + name, "admin:wrong-" + secretPasswd},
		{http.MethodDelete, "/api/v1/builds/nope", "admin:" + secretPasswd},
		// GitHub cannot be reached: the call with the token fails.
		{http.MethodPost, "/api/v1/builds/trigger/branch?repo=codertocat/hello-world&branch=master", "admin:" + secretPasswd},
	} {
		record(r.method+" "+r.path, serve(h, httptest.NewRequest(r.method, r.path, nil), r.auth))
	}

	env.NoSecretIn(t, secretValues, map[string]string{"the function's log": out.String(), "an answer": strings.Join(answers, "\n")})

	// Configuration errors name variables, never their values.
	var cfg Config
	err := config.Load(map[string]string{
		"RUNBOAT_REPOS":                 `[{"repo": "(", "builds": [{"image": "x", "secret_env": {"A": "` + secretBuildEnv + `"}}]}]`,
		"RUNBOAT_BUILD_SECRET_ENV":      `{"PGPASSWORD": "` + secretBuildEnv + `"`,
		"RUNBOAT_API_ADMIN_PASSWD":      secretPasswd,
		"RUNBOAT_GITHUB_TOKEN":          secretToken,
		"RUNBOAT_GITHUB_WEBHOOK_SECRET": testSecret,
	}, &cfg)
	if err == nil {
		t.Fatal("a broken configuration was accepted")
	}
	for _, s := range []string{secretBuildEnv, secretPasswd, secretToken} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the configuration error quotes the secret %q: %v", s, err)
		}
	}
}

// serve sends a request to the function, with basic credentials
// "user:passwd" when auth is not empty.
func serve(h http.Handler, r *http.Request, auth string) *httptest.ResponseRecorder {
	if user, passwd, ok := strings.Cut(auth, ":"); ok {
		r.SetBasicAuth(user, passwd)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
