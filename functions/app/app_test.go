package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"runboat.dev/functions/internal/testutil"
	"runboat.dev/shared/config"
	"runboat.dev/shared/testenv/e2e"
)

// The function as a whole: a signed delivery to the webhook makes a build
// that the console's API then lists.
func TestWebhookThenConsole(t *testing.T) {
	env := e2e.New(t)
	kubefiles, err := filepath.Abs(filepath.Join("..", "..", "kubefiles", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	repos, err := json.Marshal([]map[string]any{{
		"repo": "^codertocat/hello-world$", "branch": "^master$",
		"builds": []map[string]any{{"image": "busybox:1.36", "kubefiles_path": kubefiles}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	err = config.Load(map[string]string{
		"RUNBOAT_REPOS":                   string(repos),
		"RUNBOAT_BUILD_NAMESPACE":         env.Namespace,
		"RUNBOAT_BUILD_DOMAIN":            "builds.example.org",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET":   "s3cret",
		"RUNBOAT_DISABLE_COMMIT_STATUSES": "true",
		"RUNBOAT_API_ADMIN_USER":          "admin",
		"RUNBOAT_API_ADMIN_PASSWD":        "pw",
	}, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(cfg, env.Config, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, testutil.Delivery("/webhooks/github", "push", testutil.Payload(t, "push.branch"), []byte("s3cret")))
	if w.Code != http.StatusCreated {
		t.Fatalf("webhook: %d %s, want 201", w.Code, w.Body.String())
	}
	// The function ran an initializer pass: the init Job exists already,
	// without any job having run.
	jobs, err := env.Client.BatchV1().Jobs(env.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "runboat/job-kind=initialize"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Fatalf("got %d init Jobs right after the delivery, want 1", len(jobs.Items))
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/builds?repo=codertocat/hello-world", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("console: %d %s", w.Code, w.Body.String())
	}
	var builds []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &builds); err != nil {
		t.Fatalf("console answer %q: %v", w.Body.String(), err)
	}
	if len(builds) != 1 || builds[0]["status"] != "initializing" || !strings.HasPrefix(builds[0]["name"].(string), "b") {
		t.Fatalf("builds = %v, want the one initializing build", builds)
	}
}

func TestConfigErrorsNameVariables(t *testing.T) {
	var cfg Config
	err := config.Load(map[string]string{"RUNBOAT_RESET_INTERVAL": "-1m"}, &cfg)
	if err == nil {
		t.Fatal("Load accepted an empty configuration")
	}
	for _, v := range []string{"RUNBOAT_REPOS", "RUNBOAT_BUILD_NAMESPACE", "RUNBOAT_GITHUB_WEBHOOK_SECRET", "RUNBOAT_API_ADMIN_USER", "RUNBOAT_RESET_INTERVAL"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error %q does not name %s", err, v)
		}
	}
}
