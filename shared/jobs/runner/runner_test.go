package runner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/lease"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	jt "runboat.dev/shared/testenv/jobstest"
)

// job plans one action per build, whose Apply fails as told.
type job struct {
	plans int
	fail  func(b *runner.Build, call int) error
	calls map[string]int
}

func (*job) Name() string { return "test" }

func (j *job) Plan(_ context.Context, _ *runner.Env, builds *runner.Builds) (runner.Plan, error) {
	j.plans++
	var p runner.Plan
	for _, b := range builds.All {
		p.Actions = append(p.Actions, &action{j: j, b: b})
	}
	return p, nil
}

type action struct {
	j *job
	b *runner.Build
}

func (a *action) String() string { return "touch " + a.b.Name }

func (a *action) Apply(context.Context, *runner.Env) error {
	if a.j.calls == nil {
		a.j.calls = map[string]int{}
	}
	a.j.calls[a.b.Name]++
	if a.j.fail != nil {
		return a.j.fail(a.b, a.j.calls[a.b.Name])
	}
	return nil
}

func env(t *testing.T, out *bytes.Buffer, objs ...runtime.Object) (*runner.Env, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	cfg := runner.Config{Builds: config.Builds{Namespace: "builds", Domain: "runboat.test"}, Quotas: config.Quotas{MaxInitializing: 1, MaxStarted: 1, MaxDeployed: 1}}
	clients := &kube.Clients{
		Typed:    cs,
		Dynamic:  dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		Metadata: metadatafake.NewSimpleMetadataClient(runtime.NewScheme()),
		Mapper:   testrestmapper.TestOnlyStaticRESTMapper(scheme.Scheme),
	}
	e, err := runner.NewEnv(cfg, clients, "test", runner.EnvOptions{
		Clock:    clocktesting.NewFakeClock(jt.T0),
		Identity: "me",
		Statuses: github.NoopStatusPoster{},
		Out:      out,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, cs
}

func deployments(specs ...jt.Spec) []runtime.Object {
	var out []runtime.Object
	for _, b := range jt.Builds(specs...) {
		out = append(out, b.Deployment)
	}
	return out
}

func writes(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

func TestDryRunPrintsAndWritesNothing(t *testing.T) {
	objs := deployments(jt.Spec{N: 2}, jt.Spec{N: 1})
	// A build of the Python runboat, to adopt.
	python := objs[0].(*appsv1.Deployment)
	delete(python.Labels, model.LabelCommit)
	delete(python.Labels, model.LabelTarget)
	var out bytes.Buffer
	e, cs := env(t, &out, objs...)
	j := &job{}
	if err := runner.Run(context.Background(), e, j, runner.Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	b1, b2 := jt.Build(jt.Spec{N: 1}).Name, jt.Build(jt.Spec{N: 2}).Name
	want := fmt.Sprintf("test: adopt build %s: set the labels runboat/commit, runboat/target, runboat/repo-key and runboat/init-status\ntest: touch %s\ntest: touch %s\n", b2, b1, b2)
	if out.String() != want {
		t.Errorf("dry run printed\n%s\nwant\n%s", out.String(), want)
	}
	if w := writes(cs); len(w) != 0 || len(j.calls) != 0 {
		t.Errorf("a dry run wrote %v and applied %v", w, j.calls)
	}
}

func TestRunAdoptsThenApplies(t *testing.T) {
	objs := deployments(jt.Spec{N: 1})
	d := objs[0].(*appsv1.Deployment)
	delete(d.Labels, model.LabelTarget)
	e, cs := env(t, &bytes.Buffer{}, objs...)
	j := &job{}
	if err := runner.Run(context.Background(), e, j, runner.Options{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.AppsV1().Deployments("builds").Get(context.Background(), d.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[model.LabelTarget] == "" {
		t.Errorf("not adopted: labels %v", got.Labels)
	}
	if j.calls[d.Labels[model.LabelBuild]] != 1 {
		t.Errorf("applied %v", j.calls)
	}
	// The Lease was taken, and released.
	l, err := cs.CoordinationV1().Leases("builds").Get(context.Background(), "runboat-test", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity != nil {
		t.Errorf("lease after the run: %v, %v", l, err)
	}
}

func TestConflictReadsAndPlansAgain(t *testing.T) {
	objs := deployments(jt.Spec{N: 1}, jt.Spec{N: 2})
	e, _ := env(t, &bytes.Buffer{}, objs...)
	first := jt.Build(jt.Spec{N: 1}).Name
	j := &job{fail: func(b *runner.Build, call int) error {
		if b.Name == first && call == 1 {
			return fmt.Errorf("failed to patch: %w", ops.ErrConflict)
		}
		return nil
	}}
	res, err := runner.Pass(context.Background(), e, j, false)
	if err != nil {
		t.Fatal(err)
	}
	// The conflict stopped the first plan before the second action; the
	// second plan applied both.
	if j.plans != 2 || j.calls[first] != 2 || j.calls[jt.Build(jt.Spec{N: 2}).Name] != 1 || res.Applied != 2 {
		t.Errorf("plans %d, calls %v, applied %d", j.plans, j.calls, res.Applied)
	}

	// Conflicts every time: an error, in the end.
	j = &job{fail: func(*runner.Build, int) error { return ops.ErrConflict }}
	if _, err := runner.Pass(context.Background(), e, j, false); !errors.Is(err, ops.ErrConflict) || j.plans != 4 {
		t.Errorf("pass: %v after %d plans, want ErrConflict after 4", err, j.plans)
	}
}

func TestFailedActionDoesNotStopTheOthers(t *testing.T) {
	e, _ := env(t, &bytes.Buffer{}, deployments(jt.Spec{N: 1}, jt.Spec{N: 2})...)
	boom := errors.New("boom")
	j := &job{fail: func(b *runner.Build, _ int) error {
		if b.Name == jt.Build(jt.Spec{N: 1}).Name {
			return boom
		}
		return nil
	}}
	err := runner.Run(context.Background(), e, j, runner.Options{})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failed to touch ") {
		t.Errorf("run: %v, want the action's error", err)
	}
	if j.calls[jt.Build(jt.Spec{N: 2}).Name] != 1 {
		t.Errorf("the other action was not applied: %v", j.calls)
	}
}

func TestHeldLeaseDoesNothing(t *testing.T) {
	held := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "runboat-test", Namespace: "builds"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To("other"),
			LeaseDurationSeconds: ptr.To[int32](60),
			RenewTime:            ptr.To(metav1.NewMicroTime(jt.T0.Add(-time.Second))),
		},
	}
	e, _ := env(t, &bytes.Buffer{}, append(deployments(jt.Spec{N: 1}), held)...)
	j := &job{}
	if err := runner.RunOnce(context.Background(), e, j); err != nil {
		t.Fatalf("run with the lease held: %v, want nil", err)
	}
	if j.plans != 0 {
		t.Errorf("planned %d times with the lease held", j.plans)
	}
}

func TestReadBuilds(t *testing.T) {
	objs := deployments(jt.Spec{N: 3}, jt.Spec{N: 1}, jt.Spec{N: 2})
	broken := objs[2].DeepCopyObject().(*appsv1.Deployment)
	broken.Name = "broken"
	delete(broken.Annotations, model.AnnotationCommit)
	broken.Labels[model.LabelBuild] = "broken"
	dup := objs[1].DeepCopyObject().(*appsv1.Deployment)
	dup.Name = "dup"
	unlabelled := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "builds"}}
	e, _ := env(t, &bytes.Buffer{}, append(objs, broken, dup, unlabelled)...)
	bs, err := runner.ReadBuilds(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	var names []int
	for _, b := range bs.All {
		names = append(names, int(b.Created.Sub(jt.T0)/time.Minute))
	}
	if fmt.Sprint(names) != "[1 2 3]" || bs.Unreadable != 2 || len(bs.ByName) != 3 {
		t.Errorf("builds %v (by creation), unreadable %d", names, bs.Unreadable)
	}
}

// planFunc is a job whose Plan is f.
type planFunc func(ctx context.Context, env *runner.Env) (runner.Plan, error)

func (planFunc) Name() string { return "test" }

func (f planFunc) Plan(ctx context.Context, env *runner.Env, _ *runner.Builds) (runner.Plan, error) {
	return f(ctx, env)
}

func holder(t *testing.T, cs *fake.Clientset) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases("builds").Get(context.Background(), "runboat-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// TestRunReleasesWhenStopped: a run whose context is cancelled in the middle
// of its pass (SIGTERM, SIGINT) exits non-zero and still releases its Lease,
// so the next run need not wait for it to expire.
func TestRunReleasesWhenStopped(t *testing.T) {
	e, cs := env(t, &bytes.Buffer{}, deployments(jt.Spec{N: 1})...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := runner.Run(ctx, e, planFunc(func(ctx context.Context, _ *runner.Env) (runner.Plan, error) {
		cancel() // the signal
		<-ctx.Done()
		return runner.Plan{}, ctx.Err()
	}), runner.Options{})
	if err == nil {
		t.Fatal("a run stopped in the middle of its pass returned nil")
	}
	if h := holder(t, cs); h != "" {
		t.Errorf("lease held by %q after the stopped run, want released", h)
	}
}

// TestRunStopsWhenLeaseLost: a run whose renewal finds the Lease taken by
// another stops acting (its context is cancelled in the middle of the pass)
// and exits with an error wrapping lease.ErrLost, leaving the Lease to the
// other.
func TestRunStopsWhenLeaseLost(t *testing.T) {
	e, cs := env(t, &bytes.Buffer{}, deployments(jt.Spec{N: 1})...)
	clk := e.Clock.(*clocktesting.FakeClock)
	err := runner.Run(context.Background(), e, planFunc(func(ctx context.Context, _ *runner.Env) (runner.Plan, error) {
		l, err := cs.CoordinationV1().Leases("builds").Get(ctx, "runboat-test", metav1.GetOptions{})
		if err != nil {
			return runner.Plan{}, err
		}
		l.Spec.HolderIdentity = ptr.To("other")
		if _, err := cs.CoordinationV1().Leases("builds").Update(ctx, l, metav1.UpdateOptions{}); err != nil {
			return runner.Plan{}, err
		}
		// As the API server, refuse the writes of the old version.
		cs.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewConflict(action.GetResource().GroupResource(), "runboat-test", errors.New("stale"))
		})
		// The next renewal, a third of the duration later, finds it taken.
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clk.Step(runner.DefaultLeaseDuration / 3)
		select {
		case <-ctx.Done():
			return runner.Plan{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return runner.Plan{}, errors.New("the run's context was not cancelled")
		}
	}), runner.Options{})
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("run: %v, want ErrLost", err)
	}
	if h := holder(t, cs); h != "other" {
		t.Errorf("lease held by %q, want other", h)
	}
}
