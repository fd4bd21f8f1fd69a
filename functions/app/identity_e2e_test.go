package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// The function's Role (manifests/function/role.yaml) is enough for what the
// function does, and each of its rules is needed. Both are shown by one
// scenario that crosses every path of the function on the default kubefiles
// (those the Role is written for): a push that creates a build and runs an
// initializer pass, a pull request whose pass reads the first build's
// init Job, then the console's start, log, stop, reset, lists, status and
// undeploy. With the Role as it is the scenario has every answer it expects
// and the API server refuses nothing; with any one rule removed, the API
// server refuses a request of that rule (its error reaches the function's
// log).

// TestE2EFunctionRoleIsEnough runs the scenario with the Role as it is.
func TestE2EFunctionRoleIsEnough(t *testing.T) {
	t.Parallel()
	h, env, out := newFunctionWith(t, nil, "")
	problems := identityScenario(t, h, env)
	for _, p := range problems {
		t.Error(p)
	}
	if log := unquoted(out.String()); strings.Contains(log, "is forbidden") {
		t.Errorf("the API server refused a request of the function:\n%s", forbiddenLines(log))
	}
}

// TestE2EFunctionRoleRulesAreNeeded runs the scenario once for each rule of
// the Role, with that rule removed.
func TestE2EFunctionRoleRulesAreNeeded(t *testing.T) {
	t.Parallel()
	objs, err := manifests.RenderFunction("")
	if err != nil {
		t.Fatal(err)
	}
	rules := roleRules(t, objs)
	if len(rules) < 5 {
		t.Fatalf("the Role has %d rules", len(rules))
	}
	for i, rule := range rules {
		name := fmt.Sprintf("%d:%v", i, rule["resources"])
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			without := func(ns string) []*unstructured.Unstructured {
				objs, err := manifests.RenderFunction(ns)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range objs {
					if o.GetKind() == "Role" {
						rest := slices.Delete(slices.Clone(roleRules(t, objs)), i, i+1)
						var out []any
						for _, r := range rest {
							out = append(out, r)
						}
						if err := unstructured.SetNestedSlice(o.Object, out, "rules"); err != nil {
							t.Fatal(err)
						}
					}
				}
				return objs
			}
			h, env, out := newFunctionWith(t, without, "")
			problems := identityScenario(t, h, env)
			log := unquoted(out.String())
			var refused bool
			for _, res := range stringsOf(rule["resources"]) {
				for _, verb := range stringsOf(rule["verbs"]) {
					if strings.Contains(log, fmt.Sprintf("cannot %s resource %q", verb, res)) {
						refused = true
					}
				}
			}
			if !refused {
				t.Errorf("without the rule %v, the API server refused none of its requests (answers: %v); its log:\n%s",
					rule, problems, forbiddenLines(log))
			}
		})
	}
}

// identityScenario runs the scenario on the function h, and returns the
// answers that were not those expected.
func identityScenario(t *testing.T, h http.Handler, env *e2e.Env) []string {
	t.Helper()
	ctx := context.Background()
	var problems []string
	expect := func(what string, w *httptest.ResponseRecorder, want ...int) {
		if !slices.Contains(want, w.Code) {
			problems = append(problems, fmt.Sprintf("%s: %d %s, want %v", what, w.Code, strings.TrimSpace(w.Body.String()), want))
		}
	}
	console := func(method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if method == http.MethodDelete {
			r.SetBasicAuth("admin", "pw")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	// waitFor waits a little for cond, as admin; what the function failed
	// to do never comes, and the scenario goes on.
	waitFor := func(cond wait.ConditionWithContextFunc) {
		_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 15*time.Second, true, cond)
	}

	// The webhook, then the initializer pass: a build and its init Job.
	if w := send(t, h, "push", "push.branch.json", "delivery-1"); w.Code != http.StatusCreated {
		// Refused: the log tells why, and there is no build to go on with.
		return append(problems, fmt.Sprintf("push: %d %s, want 201", w.Code, strings.TrimSpace(w.Body.String())))
	}
	var name string
	waitFor(func(ctx context.Context) (bool, error) {
		l, err := env.Client.AppsV1().Deployments(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: model.LabelBuild})
		if err != nil || len(l.Items) == 0 {
			return false, err
		}
		name = l.Items[0].Labels[model.LabelBuild]
		return true, nil
	})
	if name == "" {
		return append(problems, "no build was made")
	}
	// A new build, and its initializer pass, which reads the first build's
	// init Job (still running: the default kubefiles' data volume claim is
	// never bound on the local cluster, so no init pod runs).
	expect("pull request", send(t, h, "pull_request", "pull_request.opened.json", "delivery-2"), http.StatusCreated)
	// The first build initialized, as the initializer would record it, so
	// that the console may start it.
	patch := []byte(`{"metadata":{"annotations":{"` + model.AnnotationInitStatus + `":"succeeded"}}}`)
	l, err := env.Client.AppsV1().Deployments(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: model.LabelBuild + "=" + name})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("the build %s: %v (%d)", name, err, len(l.Items))
	}
	if _, err := env.Client.AppsV1().Deployments(env.Namespace).Patch(ctx, l.Items[0].Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	// The console.
	api := "/api/v1/builds/" + name
	expect("start", console(http.MethodPost, api+"/start"), http.StatusOK)
	waitFor(func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: model.LabelBuild + "=" + name + "," + model.LabelJobKind + " notin (initialize)"})
		return err == nil && len(pods.Items) > 0, err
	})
	// The pod is pending (its claim unbound) and the local cluster's pods
	// have no log to give anyway: no log (404) or 502; the requests are
	// made all the same.
	expect("log", console(http.MethodGet, api+"/log"), http.StatusOK, http.StatusNotFound, http.StatusBadGateway)
	expect("init log", console(http.MethodGet, api+"/init-log"), http.StatusOK, http.StatusNotFound, http.StatusBadGateway)
	expect("stop", console(http.MethodPost, api+"/stop"), http.StatusOK)
	expect("reset", console(http.MethodPost, api+"/reset"), http.StatusOK)
	expect("builds", console(http.MethodGet, "/api/v1/builds?repo=codertocat/hello-world"), http.StatusOK)
	expect("page", console(http.MethodGet, "/repos/codertocat/hello-world"), http.StatusOK)
	expect("undeploy", console(http.MethodDelete, api), http.StatusOK)
	expect("status", console(http.MethodGet, "/api/v1/status"), http.StatusOK)
	return problems
}

// roleRules returns the rules of the function's Role among objs.
func roleRules(t *testing.T, objs []*unstructured.Unstructured) []map[string]any {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Role" || o.GetName() != manifests.FunctionRole {
			continue
		}
		rules, _, err := unstructured.NestedSlice(o.Object, "rules")
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, r := range rules {
			out = append(out, r.(map[string]any))
		}
		return out
	}
	t.Fatalf("no Role %s in manifests/function", manifests.FunctionRole)
	return nil
}

func stringsOf(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// unquoted is the function's JSON log with its quotes unescaped, so that
// the API server's messages read as they were written.
func unquoted(log string) string { return strings.ReplaceAll(log, `\"`, `"`) }

// forbiddenLines returns the lines of log that tell of a refusal.
func forbiddenLines(log string) string {
	var out []string
	for l := range strings.Lines(log) {
		if strings.Contains(l, "forbidden") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
