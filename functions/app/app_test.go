package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"runboat.dev/functions/internal/testutil"
	"runboat.dev/shared/config"
)

// The function as a whole: a signed delivery to the webhook makes a build
// that the console's API then lists.
func TestWebhookThenConsole(t *testing.T) {
	h, env, _ := newFunction(t)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, testutil.Delivery("/webhooks/github", "push", testutil.Payload(t, "push.branch"), []byte(testSecret)))
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
	err := config.Load(map[string]string{"RUNBOAT_RESET_INTERVAL": "-1m", "RUNBOAT_RESPONSE_STREAMING": "sometimes"}, &cfg)
	if err == nil {
		t.Fatal("Load accepted an empty configuration")
	}
	for _, v := range []string{"RUNBOAT_REPOS", "RUNBOAT_BUILD_NAMESPACE", "RUNBOAT_GITHUB_WEBHOOK_SECRET", "RUNBOAT_API_ADMIN_USER", "RUNBOAT_RESET_INTERVAL", "RUNBOAT_RESPONSE_STREAMING"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error %q does not name %s", err, v)
		}
	}
}
