package jobs_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/lease"
	"runboat.dev/shared/model"
)

// freezer is a RoundTripper that, once frozen, fails every request at once:
// a process cut off from the API server, or killed, as the cluster sees it
// (no renewal, no release reaches it).
type freezer struct {
	next   http.RoundTripper
	frozen atomic.Bool
}

func (f *freezer) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.frozen.Load() {
		return nil, errors.New("frozen")
	}
	return f.next.RoundTrip(r)
}

// initLease reads the initializer's Lease.
func (h *harness) initLease() *coordinationv1.Lease {
	h.t.Helper()
	l, err := h.e.Client.CoordinationV1().Leases(h.e.Namespace).Get(context.Background(), runner.LeaseName(initializer.Job{}), metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

// waitHeldBy waits until identity holds the initializer's Lease.
func (h *harness) waitHeldBy(identity string) *coordinationv1.Lease {
	h.t.Helper()
	var l *coordinationv1.Lease
	waitFor(h.t, "the Lease to be held by "+identity, time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		l, err = h.e.Client.CoordinationV1().Leases(h.e.Namespace).Get(ctx, runner.LeaseName(initializer.Job{}), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && ptr.Deref(l.Spec.HolderIdentity, "") == identity, err
	})
	return l
}

// TestE2EFrozenRunBlocksAtMostItsLease: a lingering initializer run whose
// requests stop reaching the API server (killed, as the cluster sees it)
// keeps its Lease, with the default duration, until it expires: meanwhile
// the reaction pass the webhook runs does nothing. The frozen run stops
// acting and ends with lease.ErrLost before the Lease expires; the first
// pass after expiry takes the Lease over and launches the new build's init
// Job.
func TestE2EFrozenRunBlocksAtMostItsLease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/slow$", slowInit))
	f := &freezer{}
	env := h.env(initializer.Name, func(rt http.RoundTripper) http.RoundTripper { f.next = rt; return f },
		func(o *runner.EnvOptions) {
			o.Identity = "frozen-run"
			o.LeaseDuration = runner.DefaultLeaseDuration
		})
	done := make(chan error, 1)
	go func() {
		done <- runner.Run(h.ctx(), env, initializer.Job{}, runner.Options{Linger: 5 * time.Minute})
	}()
	h.waitHeldBy("frozen-run")
	f.frozen.Store(true)
	name := h.deploy("acme/slow", "main", 0, 1)

	// The webhook's pass finds the Lease held: nothing done.
	if err := initializer.RunOnce(h.ctx(), h.env(initializer.Name, nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.jobsOf(model.JobInitialize, name)); n != 0 {
		t.Fatalf("%d init Jobs launched while the frozen run held the Lease", n)
	}

	// The frozen run gives up: its renewals fail, so it stops acting and
	// exits non-zero, before the Lease expires for the others.
	select {
	case err := <-done:
		if !errors.Is(err, lease.ErrLost) {
			t.Fatalf("frozen run: %v, want lease.ErrLost", err)
		}
	case <-time.After(2 * runner.DefaultLeaseDuration):
		t.Fatal("the frozen run did not end")
	}
	last := h.initLease()
	if got := ptr.Deref(last.Spec.HolderIdentity, ""); got != "frozen-run" {
		t.Fatalf("the Lease is held by %q when the frozen run ended, want still frozen-run (not expired, not released)", got)
	}
	expiry := last.Spec.RenewTime.Add(time.Duration(ptr.Deref(last.Spec.LeaseDurationSeconds, 0)) * time.Second)
	if d := time.Duration(ptr.Deref(last.Spec.LeaseDurationSeconds, 0)) * time.Second; d != runner.DefaultLeaseDuration {
		t.Errorf("lease duration %s, want %s", d, runner.DefaultLeaseDuration)
	}

	// The next passes act once the Lease expired: at most its duration
	// after the frozen run's last renewal.
	waitFor(t, "a pass to launch the init Job", runner.DefaultLeaseDuration+30*time.Second, func(context.Context) (bool, error) {
		if err := initializer.RunOnce(h.ctx(), h.env(initializer.Name, nil)); err != nil {
			return false, err
		}
		return len(h.jobsOf(model.JobInitialize, name)) == 1, nil
	})
	taken := h.initLease()
	if got := ptr.Deref(taken.Spec.LeaseTransitions, 0); got != ptr.Deref(last.Spec.LeaseTransitions, 0)+1 {
		t.Errorf("lease transitions %d, want one more than the frozen run's %d", got, ptr.Deref(last.Spec.LeaseTransitions, 0))
	}
	if taken.Spec.AcquireTime == nil || taken.Spec.AcquireTime.Time.Before(expiry) {
		t.Errorf("lease taken over at %v, before the frozen run's expired (%s)", taken.Spec.AcquireTime, expiry)
	}
	if got := ptr.Deref(taken.Spec.HolderIdentity, ""); got != "" {
		t.Errorf("lease held by %q after the pass, want released", got)
	}
}

// TestE2EReactionPassWhileLingering: while a lingering run holds the Lease,
// the webhook's reaction pass exits 0 without acting, and the lingering run
// launches the new build's init Job by its watch. Stopped (the signal of a
// CronJob's pod ending), the lingering run releases its Lease at once.
func TestE2EReactionPassWhileLingering(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 10}, rule("^acme/slow$", slowInit))
	ctx, cancel := context.WithCancel(h.ctx())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		env := h.env(initializer.Name, nil, func(o *runner.EnvOptions) {
			o.Identity = "lingering-run"
			o.LeaseDuration = runner.DefaultLeaseDuration
		})
		done <- runner.Run(ctx, env, initializer.Job{}, runner.Options{Linger: 5 * time.Minute})
	}()
	before := h.waitHeldBy("lingering-run")
	name := h.deploy("acme/slow", "main", 0, 1)
	if err := initializer.RunOnce(h.ctx(), h.env(initializer.Name, nil)); err != nil {
		t.Fatalf("the reaction pass while a run lingers: %v, want nil", err)
	}
	if after := h.initLease(); ptr.Deref(after.Spec.HolderIdentity, "") != "lingering-run" ||
		ptr.Deref(after.Spec.LeaseTransitions, 0) != ptr.Deref(before.Spec.LeaseTransitions, 0) {
		t.Fatalf("the reaction pass took the Lease of the lingering run: %+v", after.Spec)
	}
	waitFor(t, "the lingering run to launch the new build's init Job", time.Minute, func(context.Context) (bool, error) {
		return len(h.jobsOf(model.JobInitialize, name)) == 1, nil
	})
	cancel()
	select {
	case err := <-done:
		// Stopped while idle it exits 0; in the middle of a pass (the
		// build's Job changing), with the error of the pass cut short.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stopped lingering run: %v, want nil or context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the stopped lingering run did not end")
	}
	if got := ptr.Deref(h.initLease().Spec.HolderIdentity, ""); got != "" {
		t.Errorf("lease held by %q after the lingering run stopped, want released", got)
	}
}

// TestE2ELeaseOfAnEndedPod: the Lease held, not expired, by a run of
// another machine is waited for while that run's pod is not known to have
// ended, and taken at once when its pod has failed (a CronJob's pod whose
// process was killed). The pod is looked for as the jobs' ServiceAccount
// may, by a list with a field selector.
func TestE2ELeaseOfAnEndedPod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/podlease$", nil))
	ctx := context.Background()
	const pod = "runboat-initializer-29000000-x7k2p"
	// A pod of no node: no kubelet or kwok changes its status but the test.
	p, err := h.e.Client.CoreV1().Pods(h.e.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod},
		Spec: corev1.PodSpec{
			NodeName:   "runboat-no-such-node",
			Containers: []corev1.Container{{Name: "initializer", Image: image}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The identity a run in that pod has: another process table than this
	// machine's.
	holder := pod + "-1-4242-00ff00ff-1a2b3c4d"
	now := metav1.NewMicroTime(time.Now())
	if _, err := h.e.Client.CoordinationV1().Leases(h.e.Namespace).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: runner.LeaseName(initializer.Job{})},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](300),
			AcquireTime: &now, RenewTime: &now, LeaseTransitions: ptr.To[int32](4),
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	name := h.deploy("acme/podlease", "main", 0, 1)

	// Its pod is pending: the Lease is the run's.
	if err := initializer.RunOnce(h.ctx(), h.env(initializer.Name, nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.jobsOf(model.JobInitialize, name)); n != 0 {
		t.Fatalf("%d init Jobs launched while the Lease was held by a run whose pod is pending", n)
	}
	if got := ptr.Deref(h.initLease().Spec.HolderIdentity, ""); got != holder {
		t.Fatalf("the Lease is held by %q, want still %s", got, holder)
	}

	// Its pod failed: the next pass takes the Lease and acts.
	p.Status.Phase = corev1.PodFailed
	if _, err := h.e.Client.CoreV1().Pods(h.e.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := initializer.RunOnce(h.ctx(), h.env(initializer.Name, nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.jobsOf(model.JobInitialize, name)); n != 1 {
		t.Fatalf("%d init Jobs after the pass that followed the holder's pod failing, want 1", n)
	}
	taken := h.initLease()
	if got := ptr.Deref(taken.Spec.LeaseTransitions, 0); got != 5 {
		t.Errorf("lease transitions %d, want 5: taken over once", got)
	}
}
