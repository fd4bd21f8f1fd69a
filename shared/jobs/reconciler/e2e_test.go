package reconciler_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"k8s.io/utils/clock"
	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/jobs/reconciler"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/githubdouble"
	"runboat.dev/shared/testenv/manifests"
)

const repo = "acme/app"

func sha(n int) string { return fmt.Sprintf("%040x", n) }

// TestE2EReconcile is the case, on the local cluster, acting as the
// reconciler's ServiceAccount of the manifests, with GitHub's double: the
// builds of PRs 1 to 3 and of the branches 16.0 and 17.0; GitHub says PR 2
// is closed, 17.0 is gone, PR 4 is open and 16.0 has a new head. One pass
// undeploys PR 2's and 17.0's builds, deploys PR 4's head and 16.0's new
// head, and leaves the rest; a second pass changes nothing and makes only
// conditional requests, answered 304; during a GitHub outage a pass
// changes nothing and fails.
func TestE2EReconcile(t *testing.T) {
	env := e2e.New(t)
	manifests.Install(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	rule, err := config.NewRepoRule("^acme/", `^1[67]\.0$`, config.BuildSettings{
		Image: "busybox:1.36", KubefilesPath: filepath.Join("..", "..", "..", "kubefiles", "demo"),
	})
	if err != nil {
		t.Fatal(err)
	}
	builds := config.Builds{Repos: config.RepoRules{rule}, Namespace: env.Namespace, Domain: "builds.example.org"}

	// The builds, made as the webhook makes them.
	admin, err := kube.NewClients(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	webhook := deploy.New(builds, admin, clock.RealClock{})
	refs := map[string]model.Ref{}
	for key, r := range map[string]struct {
		branch string
		pr, n  int
	}{"pr1": {"16.0", 1, 1}, "pr2": {"16.0", 2, 2}, "pr3": {"16.0", 3, 3}, "16.0": {"16.0", 0, 4}, "17.0": {"17.0", 0, 5}} {
		ref, err := model.NewRef(repo, r.branch, r.pr, sha(r.n))
		if err != nil {
			t.Fatal(err)
		}
		if _, created, err := webhook.Deploy(ctx, ref); err != nil || !created {
			t.Fatalf("deploy %s: created %v, %v", key, created, err)
		}
		refs[key] = ref
	}

	gh := githubdouble.New(t)
	gh.SetBranch(repo, "16.0", sha(14))
	gh.SetBranch(repo, "main", sha(20)) // no rule: no build
	gh.OpenPR(repo, githubdouble.PR{Number: 1, Base: "16.0", Head: sha(1)})
	gh.OpenPR(repo, githubdouble.PR{Number: 3, Base: "16.0", Head: sha(3)})
	gh.OpenPR(repo, githubdouble.PR{Number: 4, Base: "16.0", Head: sha(9)})

	clients, err := kube.NewClients(manifests.ReconcilerConfig(t, env))
	if err != nil {
		t.Fatal(err)
	}
	renv, err := runner.NewEnv(runner.Config{
		Builds:     builds,
		Quotas:     config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 20},
		GitHub:     config.GitHub{Token: "t0ken", APIURL: gh.APIURL(), BaseURL: "https://runboat.example.org"},
		Reconciler: config.Reconciler{Undeploy: true, Deploy: true, MaxRequests: 20},
	}, clients, reconciler.Name, runner.EnvOptions{Out: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	job := reconciler.Job{Transport: gh.Client().Transport}
	deps := env.Client.AppsV1().Deployments(env.Namespace)
	snapshot := func() map[string]*appsv1.Deployment {
		t.Helper()
		list, err := deps.List(ctx, metav1.ListOptions{LabelSelector: model.LabelBuild})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*appsv1.Deployment{}
		for i := range list.Items {
			d := &list.Items[i]
			out[d.Labels[model.LabelBuild]] = d
		}
		return out
	}
	before := snapshot()

	// The first pass.
	if err := runner.Run(ctx, renv, job, runner.Options{}); err != nil {
		t.Fatalf("first pass: %v", err)
	}
	after := snapshot()
	newHead, _ := model.NewRef(repo, "16.0", 0, sha(14))
	pr4, _ := model.NewRef(repo, "16.0", 4, sha(9))
	for _, r := range []model.Ref{newHead, pr4} {
		d, ok := after[r.Name()]
		if !ok {
			t.Errorf("no build of %s %s %d", r.TargetBranch, r.Commit, r.PR)
			continue
		}
		if d.Annotations[model.AnnotationInitStatus] != string(model.InitTodo) || d.DeletionTimestamp != nil {
			t.Errorf("new build %s: %v, deleting %v", d.Name, d.Annotations, d.DeletionTimestamp)
		}
	}
	for key, ref := range refs {
		d := after[ref.Name()]
		gone := key == "pr2" || key == "17.0"
		if got := d.DeletionTimestamp != nil; got != gone {
			t.Errorf("build of %s: being deleted %v, want %v", key, got, gone)
		}
		if !gone && changed(before[ref.Name()], d) {
			t.Errorf("build of %s was changed", key)
		}
	}
	if len(after) != 7 {
		t.Errorf("%d builds after the pass, want 7", len(after))
	}
	ev := env.WaitForEvent(t, after[refs["pr2"].Name()], "runboat.dev/reconciler", "Undeploying", 10*time.Second)
	if !strings.Contains(ev.Note, "reconciled: pull request closed on GitHub") {
		t.Errorf("Event note %q", ev.Note)
	}
	ev = env.WaitForEvent(t, after[refs["17.0"].Name()], "runboat.dev/reconciler", "Undeploying", 10*time.Second)
	if !strings.Contains(ev.Note, "reconciled: branch deleted on GitHub") {
		t.Errorf("Event note %q", ev.Note)
	}
	var pending []string
	for _, s := range gh.Statuses() {
		if s.State == "pending" && s.Context == "runboat/build" {
			pending = append(pending, s.SHA)
		}
	}
	slices.Sort(pending)
	if want := []string{sha(9), sha(14)}; !slices.Equal(pending, want) {
		t.Errorf("pending statuses of %v, want %v", pending, want)
	}
	first := gh.Requests()
	for _, r := range first {
		if r.Method == http.MethodGet && r.Conditional {
			t.Errorf("first pass: conditional request %s without a cache", r.Path)
		}
	}
	cache, err := env.Client.CoreV1().ConfigMaps(env.Namespace).Get(ctx, reconciler.CacheConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no cache after the first pass: %v", err)
	}

	// The second pass: nothing to do, only conditional requests answered
	// 304, nothing written.
	if err := runner.Run(ctx, renv, job, runner.Options{}); err != nil {
		t.Fatalf("second pass: %v", err)
	}
	second := gh.Requests()
	if len(second) != 2 {
		t.Errorf("second pass: %d requests, want 2 (branches, pulls)", len(second))
	}
	for _, r := range second {
		if !r.Conditional || r.Code != http.StatusNotModified {
			t.Errorf("second pass: %s %s conditional %v answered %d, want a conditional request answered 304", r.Method, r.Path, r.Conditional, r.Code)
		}
	}
	checkUnchanged(t, after, snapshot())
	if c, err := env.Client.CoreV1().ConfigMaps(env.Namespace).Get(ctx, reconciler.CacheConfigMap, metav1.GetOptions{}); err != nil || c.ResourceVersion != cache.ResourceVersion {
		t.Errorf("the cache was written by a pass with nothing new (%v)", err)
	}

	// An outage: a pass changes nothing, and fails saying why.
	gh.ClosePR(repo, 1)
	gh.DeleteBranch(repo, "16.0")
	gh.Outage(http.StatusBadGateway)
	err = runner.Run(ctx, renv, job, runner.Options{})
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("pass during an outage: %v, want an error with the 502", err)
	}
	checkUnchanged(t, after, snapshot())

	// The outage over, the next pass acts on what changed meanwhile.
	gh.Outage(0)
	if err := runner.Run(ctx, renv, job, runner.Options{}); err != nil {
		t.Fatalf("pass after the outage: %v", err)
	}
	last := snapshot()
	for _, name := range []string{refs["pr1"].Name(), refs["16.0"].Name(), newHead.Name()} {
		if last[name].DeletionTimestamp == nil {
			t.Errorf("build %s not undeployed after its pull request or branch went", name)
		}
	}
	sel := labels.Set{model.LabelTarget: model.PRKey(repo, 3)}.String()
	if l, err := deps.List(ctx, metav1.ListOptions{LabelSelector: sel}); err != nil || len(l.Items) != 1 || l.Items[0].DeletionTimestamp != nil {
		t.Errorf("PR 3's build: %v", err)
	}
}

// checkUnchanged fails when a build was added, removed or written by
// anyone but the Deployment controller (which writes their status).
func checkUnchanged(t *testing.T, before, after map[string]*appsv1.Deployment) {
	t.Helper()
	if len(after) != len(before) {
		t.Errorf("%d builds, want %d", len(after), len(before))
	}
	for name, d := range before {
		if a, ok := after[name]; !ok || changed(d, a) {
			t.Errorf("build %s changed", name)
		}
	}
}

// changed tells whether a Deployment's spec, labels, runboat annotations
// or deletion changed (the Deployment controller writes its status and its
// revision annotation).
func changed(a, b *appsv1.Deployment) bool {
	return a.Generation != b.Generation || !maps.Equal(a.Labels, b.Labels) || !maps.Equal(runboatKeys(a.Annotations), runboatKeys(b.Annotations)) ||
		(a.DeletionTimestamp == nil) != (b.DeletionTimestamp == nil)
}

func runboatKeys(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, "runboat/") {
			out[k] = v
		}
	}
	return out
}
