package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// These tests run the function's real handler (app.NewHandler) on the local
// control plane, with the real payloads of the webhook's testdata. The
// function acts as its ServiceAccount, with only the long-lived token of
// manifests/function; the tests' own reads and writes act as admin.

const testSecret = "s3cret"

// newFunction returns the function's handler acting on the test's
// namespace with the demo kubefiles, as the function's ServiceAccount, and
// its output: JSON lines at debug level. Read the output once the handler
// has returned: every goroutine that logs has returned with it.
func newFunction(t *testing.T) (http.Handler, *e2e.Env, *bytes.Buffer) {
	t.Helper()
	kubefiles, err := filepath.Abs(filepath.Join("..", "..", "kubefiles", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	return newFunctionWith(t, nil, kubefiles)
}

// newFunctionWith is newFunction with the function's identity installed
// from identity (a render of manifests/function for the namespace given,
// changed by the test; nil: manifests/function as it is), and the
// kubefiles folder kubefiles ("": the default kubefiles, embedded).
func newFunctionWith(t *testing.T, identity func(ns string) []*unstructured.Unstructured, kubefiles string) (http.Handler, *e2e.Env, *bytes.Buffer) {
	t.Helper()
	return newFunctionWithSettings(t, identity, kubefiles, nil)
}

// newFunctionWithSettings is newFunctionWith with settings added to (or
// replacing) the function's configuration.
func newFunctionWithSettings(t *testing.T, identity func(ns string) []*unstructured.Unstructured, kubefiles string, settings map[string]string) (http.Handler, *e2e.Env, *bytes.Buffer) {
	t.Helper()
	env := e2e.New(t)
	var restConfig *rest.Config
	if identity == nil {
		restConfig = manifests.InstallFunction(t, env)
	} else {
		restConfig = manifests.InstallFunctionObjects(t, env, identity(env.Namespace))
	}
	build := map[string]any{"image": "busybox:1.36"}
	if kubefiles != "" {
		build["kubefiles_path"] = kubefiles
	} else {
		// The default kubefiles' PersistentVolumeClaim needs its class.
		build["template_vars"] = map[string]string{"storageClassName": "standard"}
	}
	repos, err := json.Marshal([]map[string]any{{
		"repo": "^codertocat/hello-world$", "branch": "^master$",
		"builds": []map[string]any{build},
	}})
	if err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{
		"RUNBOAT_REPOS":                   string(repos),
		"RUNBOAT_BUILD_NAMESPACE":         env.Namespace,
		"RUNBOAT_BUILD_DOMAIN":            "builds.example.org",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET":   testSecret,
		"RUNBOAT_DISABLE_COMMIT_STATUSES": "true",
		"RUNBOAT_API_ADMIN_USER":          "admin",
		"RUNBOAT_API_ADMIN_PASSWD":        "pw",
	}
	maps.Copy(environ, settings)
	var cfg Config
	err = config.Load(environ, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	logger := zerolog.New(zerolog.SyncWriter(out)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	h, err := NewHandler(cfg, restConfig, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the function's output:\n%s", out)
		}
	})
	return h, env, out
}

// deliver sends a payload of the webhook's testdata, signed, as GitHub
// delivers it, and checks the response code.
func deliver(t *testing.T, h http.Handler, event, file, deliveryID string, want int) {
	t.Helper()
	if w := send(t, h, event, file, deliveryID); w.Code != want {
		t.Fatalf("delivery %s of %s: %d %s, want %d", deliveryID, file, w.Code, w.Body.String(), want)
	}
}

// send sends a payload of the webhook's testdata, signed, as GitHub
// delivers it, and returns the answer.
func send(t *testing.T, h http.Handler, event, file, deliveryID string) *httptest.ResponseRecorder {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write(body)
	req := httptest.NewRequest(http.MethodPost, "/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(github.HeaderEvent, event)
	req.Header.Set(github.HeaderDelivery, deliveryID)
	req.Header.Set(github.HeaderSignature, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// logLine is one line of the function's output, decoded, and as written.
type logLine struct {
	fields map[string]any
	raw    string
}

// logLines decodes the function's output.
func logLines(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, logLine{fields: m, raw: l})
	}
	return lines
}

// findLine returns the first line with this message whose fields include
// want.
func findLine(lines []logLine, message string, want map[string]any) (logLine, bool) {
next:
	for _, l := range lines {
		if l.fields["message"] != message {
			continue
		}
		for k, v := range want {
			if fmt.Sprint(l.fields[k]) != fmt.Sprint(v) {
				continue next
			}
		}
		return l, true
	}
	return logLine{}, false
}

// theBuild returns the Deployment of the only build of the namespace.
func theBuild(t *testing.T, env *e2e.Env) *appsv1.Deployment {
	t.Helper()
	list, err := env.Client.AppsV1().Deployments(env.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: model.LabelBuild})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("%d builds, want 1", len(list.Items))
	}
	return &list.Items[0]
}

// What the library logs on the webhook's path (the deployer, the
// initializer pass the function runs after a new build) reaches the
// function's output, with the fields of the delivery, each field once.
func TestE2EWebhookPathLogs(t *testing.T) {
	h, env, buf := newFunction(t)

	deliver(t, h, "push", "push.branch.json", "delivery-1", http.StatusCreated)
	// The same commit again: the deployer finds its build.
	deliver(t, h, "push", "push.branch.json", "delivery-2", http.StatusOK)
	name := theBuild(t, env).Labels[model.LabelBuild]
	// A pull request opened, then closed: the deployer undeploys its build.
	deliver(t, h, "pull_request", "pull_request.opened.json", "delivery-3", http.StatusCreated)
	deliver(t, h, "pull_request", "pull_request.closed.json", "delivery-4", http.StatusOK)

	// Every goroutine that logs has returned with the handler.
	lines := logLines(t, buf.String())
	for _, want := range []struct {
		message string
		fields  map[string]any
	}{
		// The initializer pass of the first delivery.
		{"plan made", map[string]any{"job": "initializer", "delivery": "delivery-1", "event": "push"}},
		{"init Job launched", map[string]any{"job": "initializer", "delivery": "delivery-1", "build": name, "repo": "codertocat/hello-world"}},
		// The deployer, on the second delivery.
		{"commit already has a build", map[string]any{"delivery": "delivery-2", "build": name, "repo": "codertocat/hello-world",
			"commit": "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}},
		{"undeploying build", map[string]any{"delivery": "delivery-4", "repo": "codertocat/hello-world", "pr": 2}},
		// The webhook's own line.
		{"webhook delivery", map[string]any{"delivery": "delivery-1", "outcome": "created", "build": name}},
	} {
		if _, ok := findLine(lines, want.message, want.fields); !ok {
			t.Errorf("no line %q with %v in the function's output", want.message, want.fields)
		}
	}
	for _, l := range lines {
		for _, k := range []string{"build", "repo", "commit", "delivery", "job"} {
			if n := strings.Count(l.raw, `"`+k+`":`); n > 1 {
				t.Errorf("line has the field %s %d times: %s", k, n, l.raw)
			}
		}
	}
}
