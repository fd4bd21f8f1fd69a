package webhook

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/githubdouble"
	"runboat.dev/shared/testenv/manifests"
)

// These tests send real GitHub payloads through the handler to a real
// deployer on the local control plane. The deployer acts as the function's
// ServiceAccount, with only its token; the assertions read as admin.

const testDomain = "builds.example.org"

type e2eFixture struct {
	*fixture
	env *e2e.Env
	// github is GitHub's double: the statuses are posted to it with the
	// go-github client, and it fails the test on any it would refuse.
	github *githubdouble.Double
}

// demoKubefiles is the demo kubefiles folder of the project.
func demoKubefiles(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "kubefiles", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testBuilds is the configuration of the tests: the payloads' repository,
// its branches, the demo kubefiles.
func testBuilds(t testing.TB, namespace string) config.Builds {
	t.Helper()
	return testBuildsWith(t, namespace, config.BuildSettings{
		Image:         "busybox:1.36",
		KubefilesPath: demoKubefiles(t),
	})
}

// testBuildsWith is the configuration of the tests with the build settings
// bs.
func testBuildsWith(t testing.TB, namespace string, bs config.BuildSettings) config.Builds {
	t.Helper()
	rule, err := config.NewRepoRule("^codertocat/hello-world$", "^(master|feature/x)$", bs)
	if err != nil {
		t.Fatal(err)
	}
	return config.Builds{Repos: config.RepoRules{rule}, Namespace: namespace, Domain: testDomain}
}

func newDeployer(t testing.TB, cfg *rest.Config, builds config.Builds) *deploy.Deployer {
	t.Helper()
	clients, err := kube.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return deploy.New(builds, clients, clock.RealClock{})
}

func newE2E(t *testing.T) *e2eFixture {
	t.Helper()
	return newE2EWith(t, func(namespace string) config.Builds { return testBuilds(t, namespace) })
}

// newE2EWith is newE2E with the configuration builds makes for the test's
// namespace.
func newE2EWith(t *testing.T, builds func(namespace string) config.Builds) *e2eFixture {
	t.Helper()
	env := e2e.New(t)
	b := builds(env.Namespace)
	d := newDeployer(t, manifests.InstallFunction(t, env), b)
	f := newFixture(t, func(o *Options) {
		o.Deployer = d
		o.Supported = b.Supported
	})
	gh := githubdouble.New(t)
	client, err := github.NewClient(gh.Client(), "t0ken", gh.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	f.poster.next = client
	return &e2eFixture{fixture: f, env: env, github: gh}
}

func (f *e2eFixture) builds(t *testing.T) []appsv1.Deployment {
	t.Helper()
	l, err := f.env.Client.AppsV1().Deployments(f.env.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: model.LabelBuild})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func (f *e2eFixture) expectCode(t *testing.T, event string, body []byte, want int) {
	t.Helper()
	w := f.serve(delivery(event, body))
	if w.Code != want {
		t.Fatalf("%s: got %d %q, want %d", event, w.Code, w.Body.String(), want)
	}
}

// checkBuild asserts that d carries the whole contract of the build of ref.
func checkBuild(t *testing.T, d appsv1.Deployment, ref model.Ref) {
	t.Helper()
	name := ref.Name()
	if got := d.Labels[model.LabelBuild]; got != name {
		t.Errorf("label %s = %q, want %q", model.LabelBuild, got, name)
	}
	if got := d.Labels[model.LabelCommit]; got != model.CommitLabel(ref.Commit) {
		t.Errorf("label %s = %q, want %q", model.LabelCommit, got, model.CommitLabel(ref.Commit))
	}
	if got := d.Labels[model.LabelTarget]; got != ref.TargetKey() {
		t.Errorf("label %s = %q, want %q", model.LabelTarget, got, ref.TargetKey())
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
		t.Errorf("replicas = %v, want 0", d.Spec.Replicas)
	}
	if len(d.Finalizers) != 1 || d.Finalizers[0] != model.Finalizer {
		t.Errorf("finalizers = %v, want [%s]", d.Finalizers, model.Finalizer)
	}
	want := map[string]string{
		model.AnnotationRepo:         ref.Repo,
		model.AnnotationTargetBranch: ref.TargetBranch,
		model.AnnotationPR:           ref.PRString(),
		model.AnnotationCommit:       ref.Commit,
		model.AnnotationInitStatus:   string(model.InitTodo),
	}
	for k, v := range want {
		if got, ok := d.Annotations[k]; !ok || got != v {
			t.Errorf("annotation %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if ts, err := time.Parse(time.RFC3339, d.Annotations[model.AnnotationLastScaled]); err != nil || time.Since(ts) > 10*time.Minute {
		t.Errorf("annotation %s = %q, want a recent RFC 3339 time", model.AnnotationLastScaled, d.Annotations[model.AnnotationLastScaled])
	}
	if sel := d.Spec.Selector.MatchLabels[model.LabelBuild]; sel != name {
		t.Errorf("selector %s = %q, want %q", model.LabelBuild, sel, name)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "busybox:1.36" {
		t.Errorf("image = %q, want the configured busybox:1.36", got)
	}
}

func mustRef(t *testing.T, branch string, pr int, sha string) model.Ref {
	t.Helper()
	r, err := model.NewRef(testRepo, branch, pr, sha)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestE2EPushAndPullRequestDeploy(t *testing.T) {
	t.Parallel()
	f := newE2E(t)
	ctx := context.Background()

	f.expectCode(t, "push", payload(t, "push.branch"), http.StatusCreated)
	f.expectCode(t, "pull_request", payload(t, "pull_request.opened"), http.StatusCreated)
	// A redelivery finds the build and changes nothing.
	f.expectCode(t, "push", payload(t, "push.branch"), http.StatusOK)
	// synchronize with a new head makes a second build of the PR.
	const newHead = "1111111111111111111111111111111111111111"
	f.expectCode(t, "pull_request", edit(t, payload(t, "pull_request.synchronize"), func(m map[string]any) {
		obj(obj(m, "pull_request"), "head")["sha"] = newHead
	}), http.StatusCreated)

	refs := map[string]model.Ref{}
	for _, r := range []model.Ref{
		mustRef(t, "master", 0, pushSHA),
		mustRef(t, "master", prNumber, prSHA),
		mustRef(t, "master", prNumber, newHead),
	} {
		refs[r.Name()] = r
	}
	deps := f.builds(t)
	if len(deps) != len(refs) {
		t.Fatalf("got %d builds, want %d", len(deps), len(refs))
	}
	for _, d := range deps {
		ref, ok := refs[d.Labels[model.LabelBuild]]
		if !ok {
			t.Fatalf("unexpected build %s", d.Name)
		}
		checkBuild(t, d, ref)
		// Every object of the demo build exists and carries the label.
		sel := metav1.ListOptions{LabelSelector: model.LabelBuild + "=" + ref.Name()}
		ings, err := f.env.Client.NetworkingV1().Ingresses(f.env.Namespace).List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		if len(ings.Items) != 1 || ings.Items[0].Spec.Rules[0].Host != ref.Slug()+"."+testDomain {
			t.Errorf("build %s: ingresses %v, want one on %s.%s", ref.Name(), ings.Items, ref.Slug(), testDomain)
		}
		svcs, err := f.env.Client.CoreV1().Services(f.env.Namespace).List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs.Items) != 1 {
			t.Errorf("build %s: %d services, want 1", ref.Name(), len(svcs.Items))
		}
	}
	// One pending status per new build, linking to its page.
	got := f.poster.Calls()
	if len(got) != len(refs) {
		t.Fatalf("got %d statuses, want %d: %+v", len(got), len(refs), got)
	}
	for _, s := range got {
		if s.State != github.StatusPending || !strings.HasPrefix(s.TargetURL, testBaseURL+"/builds/b") {
			t.Errorf("status %+v, want pending with a build link", s)
		}
	}
	// GitHub's double took them all, as GitHub's description allows.
	if posted := f.github.Statuses(); len(posted) != len(refs) || posted[0].Context != github.StatusContext {
		t.Errorf("GitHub's double got statuses %+v, want %d of context %s", posted, len(refs), github.StatusContext)
	}
}

func TestE2EUndeploy(t *testing.T) {
	t.Parallel()
	f := newE2E(t)
	f.expectCode(t, "push", payload(t, "push.branch"), http.StatusCreated)
	f.expectCode(t, "pull_request", payload(t, "pull_request.opened"), http.StatusCreated)
	branchBuild := mustRef(t, "master", 0, pushSHA).Name()
	prBuild := mustRef(t, "master", prNumber, prSHA).Name()

	deleting := func() map[string]bool {
		out := map[string]bool{}
		for _, d := range f.builds(t) {
			out[d.Labels[model.LabelBuild]] = d.DeletionTimestamp != nil
		}
		return out
	}
	f.expectCode(t, "pull_request", payload(t, "pull_request.closed"), http.StatusOK)
	if got := deleting(); got[branchBuild] || !got[prBuild] {
		t.Fatalf("after the PR closed, deleting = %v, want only %s", got, prBuild)
	}
	// The finalizer keeps the build until the undeployer has cleaned up.
	if got := deleting(); len(got) != 2 {
		t.Fatalf("got %d builds, want both still there, held by the finalizer", len(got))
	}
	body := edit(t, payload(t, "delete.branch"), func(m map[string]any) { m["ref"] = "master" })
	f.expectCode(t, "delete", body, http.StatusOK)
	if got := deleting(); !got[branchBuild] {
		t.Fatalf("after the branch was deleted, deleting = %v, want %s too", got, branchBuild)
	}
}

func TestE2EPushDeletedUndeploys(t *testing.T) {
	t.Parallel()
	f := newE2E(t)
	f.expectCode(t, "push", payload(t, "push.branch"), http.StatusCreated)
	body := edit(t, payload(t, "push.deleted"), func(m map[string]any) { m["ref"] = "refs/heads/master" })
	f.expectCode(t, "push", body, http.StatusOK)
	deps := f.builds(t)
	if len(deps) != 1 || deps[0].DeletionTimestamp == nil {
		t.Fatalf("builds %d, want 1 marked for deletion", len(deps))
	}
}

func TestE2EIgnoredChangeNothing(t *testing.T) {
	t.Parallel()
	f := newE2E(t)
	f.expectCode(t, "push", payload(t, "push.tag"), http.StatusAccepted)
	f.expectCode(t, "push", edit(t, payload(t, "push.branch"), func(m map[string]any) {
		obj(m, "repository")["full_name"] = "someone/unsupported"
	}), http.StatusAccepted)
	f.expectCode(t, "push", edit(t, payload(t, "push.branch"), func(m map[string]any) {
		m["ref"] = "refs/heads/not-supported"
	}), http.StatusAccepted)
	f.expectCode(t, "star", payload(t, "star.created"), http.StatusAccepted)
	// Bad input changes nothing either.
	bad := delivery("push", payload(t, "push.branch"))
	bad.Header.Set("X-Hub-Signature-256", github.Signature(payload(t, "push.branch"), []byte("wrong")))
	if w := f.serve(bad); w.Code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d, want 401", w.Code)
	}
	f.expectCode(t, "push", []byte(`{"ref": "refs/heads/master", "after": 12}`), http.StatusBadRequest)
	if deps := f.builds(t); len(deps) != 0 {
		t.Fatalf("got %d builds, want none", len(deps))
	}
	if got := f.poster.Calls(); len(got) != 0 {
		t.Fatalf("got statuses %+v, want none", got)
	}
}

func TestE2EConcurrentDeliveriesMakeOneBuild(t *testing.T) {
	t.Parallel()
	f := newE2E(t)
	codes := f.serveAtOnce(50, "push", payload(t, "push.branch"))
	created := 0
	for i, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Fatalf("delivery %d: %d, want 200 or 201", i, c)
		}
	}
	if created != 1 {
		t.Errorf("%d deliveries created the build, want exactly 1", created)
	}
	if deps := f.builds(t); len(deps) != 1 {
		t.Fatalf("got %d builds, want 1", len(deps))
	}
	if got := f.poster.Calls(); len(got) != 1 {
		t.Errorf("got %d pending statuses, want 1", len(got))
	}
}

func TestE2EAPIServerFailureIs5xx(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	for name, tc := range map[string]struct {
		cfg       *rest.Config
		namespace string
	}{
		// Nothing listens there.
		"unreachable": {cfg: &rest.Config{Host: "https://127.0.0.1:1", Timeout: 2 * time.Second}, namespace: env.Namespace},
		// The API server refuses: the function may do nothing in that
		// namespace (which does not even exist).
		"refused": {cfg: manifests.InstallFunction(t, env), namespace: "no-such-namespace-" + strings.ToLower(fmt.Sprint(time.Now().UnixNano()))},
	} {
		t.Run(name, func(t *testing.T) {
			builds := testBuilds(t, tc.namespace)
			f := newFixture(t, func(o *Options) {
				o.Deployer = newDeployer(t, tc.cfg, builds)
				o.Supported = builds.Supported
				o.Logger = zerolog.Nop()
			})
			w := f.serve(delivery("push", payload(t, "push.branch")))
			if w.Code != http.StatusInternalServerError {
				t.Fatalf("got %d, want 500", w.Code)
			}
			if body := w.Body.String(); strings.Contains(body, "127.0.0.1") || strings.Contains(body, "namespace") {
				t.Errorf("response %q leaks internal details", body)
			}
		})
	}
	if l, err := env.Client.AppsV1().Deployments(env.Namespace).List(context.Background(), metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Fatalf("deployments %v (err %v), want none", l, err)
	}
}

// A repository in SHA-256 object format: its commits have 64 hex digits,
// one more than a label value holds. Its builds are made, found again, and
// carry the whole sha in their annotation.
func TestE2ESHA256Commit(t *testing.T) {
	f := newE2E(t)
	sha256 := strings.Repeat("0123456789abcdef", 4)
	push := edit(t, payload(t, "push.branch"), func(m map[string]any) { m["after"] = sha256 })
	f.expectCode(t, "push", push, http.StatusCreated)
	f.expectCode(t, "push", push, http.StatusOK) // found again: the same build
	bs := f.builds(t)
	if len(bs) != 1 {
		t.Fatalf("%d builds, want 1", len(bs))
	}
	ref, err := model.NewRef(testRepo, "master", 0, sha256)
	if err != nil {
		t.Fatal(err)
	}
	checkBuild(t, bs[0], ref)
}

// A new build costs the API server a bounded number of requests: two lists
// (its labelled build, a Python runboat one), one dry run of each rendered
// object (made while the lists go), one apply of each but the Deployment,
// and the Deployment's create; a delivery of a commit that has its build
// costs the two lists and the dry runs, and writes nothing.
func TestE2ERequestsPerDelivery(t *testing.T) {
	env := e2e.New(t)
	b := testBuilds(t, env.Namespace)
	cfg, reqs := e2e.Counting(manifests.InstallFunction(t, env))
	d := newDeployer(t, cfg, b)
	f := newFixture(t, func(o *Options) { o.Deployer = d; o.Supported = b.Supported })
	push := func(sha string) []byte {
		return edit(t, payload(t, "push.branch"), func(m map[string]any) { m["after"] = sha })
	}
	// The first delivery reads the API server's discovery (once per
	// process); the second is the one counted.
	(&e2eFixture{fixture: f, env: env}).expectCode(t, "push", push(strings.Repeat("1", 40)), http.StatusCreated)
	reqs.Take()
	(&e2eFixture{fixture: f, env: env}).expectCode(t, "push", push(strings.Repeat("2", 40)), http.StatusCreated)
	got := e2e.Summary(reqs.Take())
	// The demo kubefiles: a Deployment, a Service, an Ingress, and the
	// build variables and env ConfigMaps and secret env Secret.
	want := map[string]int{
		"GET deployments ":          2,
		"PATCH deployments dry-run": 1,
		"PATCH services dry-run":    1,
		"PATCH ingresses dry-run":   1,
		"PATCH configmaps dry-run":  2,
		"PATCH secrets dry-run":     1,
		"PATCH services ":           1,
		"PATCH ingresses ":          1,
		"PATCH configmaps ":         2,
		"PATCH secrets ":            1,
		"POST deployments ":         1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("requests of a new build:\n got %v\nwant %v", got, want)
	}
	(&e2eFixture{fixture: f, env: env}).expectCode(t, "push", push(strings.Repeat("2", 40)), http.StatusOK)
	for k := range want {
		if !strings.HasSuffix(k, "dry-run") && k != "GET deployments " {
			delete(want, k)
		}
	}
	if got := e2e.Summary(reqs.Take()); !maps.Equal(got, want) {
		t.Errorf("requests of a commit that has its build:\n got %v\nwant %v (the lists and dry runs)", got, want)
	}
}
