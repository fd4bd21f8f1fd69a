package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
)

// slowInit makes init pods run for long: no slot frees during the test.
var slowInit = map[string]string{"initialize_kwok_delay": "10m"}

// TestE2EConcurrentInitializers: initializer runs started at the same moment
// (a CronJob's, a manual one, the webhook's) never launch more than
// MAX_INITIALIZING init Jobs between them; and one pass (what the webhook
// runs) launches a new build's init Job at once.
func TestE2EConcurrentInitializers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/slow$", slowInit))
	h.watch(h.checker(defaultQuotas.MaxInitializing))
	for i := range 6 {
		h.deploy("acme/slow", "main", 0, i)
	}
	const runs = 4
	envs := make([]*runner.Env, runs)
	for i := range envs {
		envs[i] = h.env(initializer.Name, nil)
	}
	start := make(chan struct{})
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for i, env := range envs {
		wg.Go(func() {
			<-start
			errs[i] = initializer.RunOnce(h.ctx(), env)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if n := len(h.jobsOf(model.JobInitialize, "")); n != defaultQuotas.MaxInitializing {
		t.Errorf("%d init Jobs after %d concurrent runs, want %d", n, runs, defaultQuotas.MaxInitializing)
	}
	if c := h.counts(h.builds()); c.Initializing != defaultQuotas.MaxInitializing {
		t.Errorf("%d builds initializing, want %d", c.Initializing, defaultQuotas.MaxInitializing)
	}

	// And again, all at once, with the slots full: nothing more.
	wg = sync.WaitGroup{}
	for i := range runs {
		wg.Go(func() { errs[i] = initializer.RunOnce(h.ctx(), h.env(initializer.Name, nil)) })
	}
	wg.Wait()
	if n := len(h.jobsOf(model.JobInitialize, "")); n != defaultQuotas.MaxInitializing {
		t.Errorf("%d init Jobs with the slots full, want %d", n, defaultQuotas.MaxInitializing)
	}

	// A free slot is taken by the next pass: free one by resetting a
	// started build to todo, as the console does.
	var started string
	for name, b := range h.builds() {
		if b.InitStatus == model.InitStarted {
			started = name
			break
		}
	}
	h.waitLeaseFree(initializer.Job{})
	h.ask(started, (*ops.Ops).Reset)
	waitFor(t, "the reset build's init Job to be gone", time.Minute, func(context.Context) (bool, error) {
		return len(h.jobsOf(model.JobInitialize, started)) == 0, nil
	})
	// Creation times have a resolution of one second, and builds created in
	// the same second are taken in the order of their names: a second
	// later, the new build is the newest whatever its name.
	time.Sleep(1100 * time.Millisecond)
	fresh := h.deploy("acme/slow", "main", 0, 100)
	if err := initializer.RunOnce(h.ctx(), h.env(initializer.Name, nil)); err != nil {
		t.Fatal(err)
	}
	// The oldest build to initialize gets the slot, not the newest.
	if n := len(h.jobsOf(model.JobInitialize, "")); n != defaultQuotas.MaxInitializing {
		t.Errorf("%d init Jobs after a slot freed, want %d", n, defaultQuotas.MaxInitializing)
	}
	if len(h.jobsOf(model.JobInitialize, fresh)) != 0 {
		t.Error("the newest build took the free slot before older ones")
	}
}

// TestE2EReactionTime: with MAX_INITIALIZING free, one initializer pass (what
// the webhook runs after creating a build) launches the new build's init
// Job before it returns.
func TestE2EReactionTime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/slow$", slowInit))
	name := h.deploy("acme/slow", "main", 0, 1)
	if err := initializer.RunOnce(h.ctx(), h.env(initializer.Name, nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.jobsOf(model.JobInitialize, name)); n != 1 {
		t.Fatalf("%d init Jobs right after the pass, want 1", n)
	}
	if got := h.builds()[name].InitStatus; got != model.InitStarted {
		t.Errorf("init-status %s, want started", got)
	}
}

// TestE2EKilledRunsConverge kills each job in the middle of its pass (after
// 1, 2, 3... writes: its context cancelled, every later request failing, its
// Lease left held), then runs it again, and checks that the builds converge:
// quotas held throughout, every build initialized once, stopped down to the
// quota, and, undeployed, entirely gone.
func TestE2EKilledRunsConverge(t *testing.T) {
	t.Parallel()
	q := config.Quotas{MaxInitializing: 2, MaxStarted: 1, MaxDeployed: 10}
	h := newHarness(t, q, rule("^acme/app$", map[string]string{"initialize_kwok_delay": "2s"}))
	checker := h.checker(q.MaxInitializing)
	h.watch(checker)
	var names []string
	for i := range 5 {
		names = append(names, h.deploy("acme/app", "main", 0, i))
	}
	check := func(when string) {
		t.Helper()
		if n := h.runningInitJobs(); n > q.MaxInitializing {
			t.Fatalf("%s: %d init Jobs run, quota %d", when, n, q.MaxInitializing)
		}
		for name := range h.builds() {
			if n := len(h.jobsOf(model.JobInitialize, name)); n > 1 {
				t.Fatalf("%s: build %s has %d init Jobs", when, name, n)
			}
		}
	}
	kill := func(job runner.Job, writes int) {
		t.Helper()
		h.waitLeaseFree(job)
		ctx, cancel := context.WithCancel(h.ctx())
		defer cancel()
		k := &killer{cancel: cancel}
		k.left.Store(int64(writes))
		env := h.env(job.Name(), func(rt http.RoundTripper) http.RoundTripper { k.next = rt; return k })
		err := runner.Run(ctx, env, job, runner.Options{})
		t.Logf("%s killed after %d writes: %v", job.Name(), writes, err)
		check(fmt.Sprintf("after %s was killed after %d writes", job.Name(), writes))
	}

	// Initialization, killed at every step of the first passes.
	for w := 1; w <= 8; w++ {
		kill(initializer.Job{}, w)
	}
	h.waitLeaseFree(initializer.Job{})
	h.until("every build to be initialized", 3*time.Minute, []runner.Job{initializer.Job{}}, func(bs map[string]model.Build) bool {
		check("during initialization")
		for _, b := range bs {
			if b.InitStatus != model.InitSucceeded {
				return false
			}
		}
		return true
	})
	for _, name := range names {
		if n := len(h.jobsOf(model.JobInitialize, name)); n != 1 {
			t.Errorf("build %s: %d init Jobs, want 1", name, n)
		}
	}

	// Stopping.
	for _, name := range names {
		h.ask(name, (*ops.Ops).Start)
	}
	for w := 1; w <= 3; w++ {
		kill(stopper.Job{}, w)
	}
	h.waitLeaseFree(stopper.Job{})
	h.run(stopper.Job{})
	if c := h.counts(h.builds()); c.Started > q.MaxStarted {
		t.Errorf("%d builds started after the stopper converged, quota %d", c.Started, q.MaxStarted)
	}

	// Undeploying.
	for _, name := range names {
		h.ask(name, (*ops.Ops).Undeploy)
	}
	for w := 1; w <= 12; w++ {
		kill(undeployer.Job{}, w)
	}
	h.waitLeaseFree(undeployer.Job{})
	h.until("every build to be gone", 3*time.Minute, []runner.Job{undeployer.Job{}}, func(bs map[string]model.Build) bool {
		return len(bs) == 0
	})
	for _, name := range names {
		waitFor(t, "every object of "+name+" to be gone", time.Minute, func(context.Context) (bool, error) {
			return len(h.leftovers(name)) == 0, nil
		})
	}
	if err := checker.Settled(h.ctx(), time.Minute); err != nil {
		t.Error(err)
	}
}

// TestE2ECheckerCatchesABrokenInitializer: the invariant checker the
// concurrency and kill tests run sees a job that breaks the quota. The
// initializer here is given a quota of 4 init Jobs while the checker holds
// the namespace to 2, as a job ignoring its quota would run.
func TestE2ECheckerCatchesABrokenInitializer(t *testing.T) {
	t.Parallel()
	q := config.Quotas{MaxInitializing: 4, MaxStarted: 1, MaxDeployed: 10}
	h := newHarness(t, q, rule("^acme/slow$", slowInit))
	c := h.checker(2)
	for i := range 4 {
		h.deploy("acme/slow", "main", 0, i)
	}
	if bs, err := c.Sample(h.ctx()); err != nil || len(bs) != 0 {
		t.Fatalf("before the initializer: %v %v", bs, err)
	}
	h.run(initializer.Job{})
	bs, err := c.Sample(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Kind != "init-quota" || !strings.Contains(bs[0].What, "4 init Jobs run") {
		t.Errorf("after an initializer that launched 4 init Jobs: %v, want one init-quota breach", bs)
	}
}

// TestE2EDryRun: a dry run prints the plan and writes nothing, not even its
// Lease.
func TestE2EDryRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/app$", nil))
	for i := range 3 {
		h.deploy("acme/app", "main", 0, i)
	}
	var out bytes.Buffer
	env := h.env(initializer.Name, nil, func(o *runner.EnvOptions) { o.Out = &out })
	if err := runner.Run(h.ctx(), env, initializer.Job{}, runner.Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "initializer: launch the init Job of build "); got != defaultQuotas.MaxInitializing {
		t.Errorf("dry run printed %d launches, want %d:\n%s", got, defaultQuotas.MaxInitializing, out.String())
	}
	if n := len(h.jobsOf(model.JobInitialize, "")); n != 0 {
		t.Errorf("a dry run launched %d init Jobs", n)
	}
	for name, b := range h.builds() {
		if b.InitStatus != model.InitTodo {
			t.Errorf("a dry run changed build %s to %s", name, b.InitStatus)
		}
	}
	_, err := h.e.Client.CoordinationV1().Leases(h.e.Namespace).Get(context.Background(), runner.LeaseName(initializer.Job{}), metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a dry run wrote its Lease: %v", err)
	}
}

// TestE2ELinger: a lingering initializer reacts to new builds and to freed
// slots at once, until its linger time ends; meanwhile other runs find the
// Lease held and do nothing.
func TestE2ELinger(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Quotas{MaxInitializing: 1, MaxStarted: 2, MaxDeployed: 10}, rule("^acme/app$", nil))
	const linger = 45 * time.Second
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- runner.Run(h.ctx(), h.env(initializer.Name, nil), initializer.Job{}, runner.Options{Linger: linger})
	}()
	// The lingering run holds the Lease: another run does nothing.
	h.waitLeaseHeld(initializer.Job{})
	a := h.deploy("acme/app", "main", 0, 1)
	b := h.deploy("acme/app", "main", 0, 2)
	// With one slot, b is initialized only after a's Job ends: the run
	// reacts to the Job's end, well before its linger time is over.
	waitFor(t, "both builds to be initialized by the lingering run", linger-5*time.Second, func(context.Context) (bool, error) {
		bs := h.builds()
		return bs[a].InitStatus == model.InitSucceeded && bs[b].InitStatus == model.InitSucceeded, nil
	})
	select {
	case err := <-done:
		t.Fatalf("the lingering run ended early, after %s: %v", time.Since(start), err)
	default:
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("lingering run: %v", err)
		}
		if took := time.Since(start); took < linger {
			t.Errorf("the run ended after %s, before its linger time %s", took, linger)
		}
	case <-time.After(linger + time.Minute):
		t.Fatal("the lingering run did not end")
	}
}

// TestE2EAdoption: a build made by the Python runboat (random name, no
// runboat/commit nor runboat/target label) gets both labels on first sight,
// without its pod template changing; then the webhook finds it.
func TestE2EAdoption(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/app$", nil))
	ctx := context.Background()
	name := "b5f0e6a8e-3c1d-4a7b-9f57-1e2d3c4b5a69"
	labels := map[string]string{model.LabelBuild: name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name + "-odoo",
			Labels: labels,
			Annotations: map[string]string{
				model.AnnotationRepo:         "acme/app",
				model.AnnotationTargetBranch: "16.0",
				model.AnnotationPR:           "",
				model.AnnotationCommit:       sha(7),
				model.AnnotationInitStatus:   string(model.InitSucceeded),
				model.AnnotationLastScaled:   "2024-03-02T11:12:13Z",
			},
			Finalizers: []string{model.Finalizer},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers:                   []corev1.Container{{Name: "odoo", Image: image}},
				},
			},
		},
	}
	created, err := h.e.Client.AppsV1().Deployments(h.e.Namespace).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.run(stopper.Job{})
	got := h.deployment(name)
	ref, err := model.NewRef("acme/app", "16.0", 0, sha(7))
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[model.LabelCommit] != sha(7) || got.Labels[model.LabelTarget] != ref.TargetKey() {
		t.Errorf("labels after adoption: %v", got.Labels)
	}
	if got.Generation != created.Generation {
		t.Errorf("adoption changed the spec: generation %d, was %d", got.Generation, created.Generation)
	}
	if reasons := h.eventReasons(got.Name); !slices.Contains(reasons, "Adopted") {
		t.Errorf("events %v, want Adopted among them", reasons)
	}
	found, isNew, err := h.deployer.Deploy(ctx, ref)
	if err != nil || isNew || found != name {
		t.Errorf("the webhook's deploy of the adopted commit: %q, created %v, %v; want %q, false", found, isNew, err, name)
	}
}
