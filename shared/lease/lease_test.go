package lease

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

const ns, name = "builds", "runboat-initializer"

// newClientset is a fake clientset that, as the API server, versions Leases
// and refuses the update of one whose resourceVersion is not the current
// one.
func newClientset() *fake.Clientset {
	cs := fake.NewClientset()
	version := 0
	next := func() string {
		version++
		return strconv.Itoa(version)
	}
	cs.PrependReactor("create", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		action.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease).ResourceVersion = next()
		return false, nil, nil
	})
	cs.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		obj := action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		cur, err := cs.Tracker().Get(action.GetResource(), obj.Namespace, obj.Name)
		if err != nil {
			return true, nil, err
		}
		if cur.(*coordinationv1.Lease).ResourceVersion != obj.ResourceVersion {
			return true, nil, apierrors.NewConflict(action.GetResource().GroupResource(), obj.Name, errors.New("stale"))
		}
		obj.ResourceVersion = next()
		return false, nil, nil
	})
	return cs
}

func TestAcquireHeldExpiredRelease(t *testing.T) {
	ctx := context.Background()
	cs := newClientset()
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))

	a, err := Acquire(ctx, cs, ns, name, "a", 10*time.Second, clk)
	if err != nil {
		t.Fatalf("first acquire: %v", err)
	}
	if _, err := Acquire(ctx, cs, ns, name, "b", 10*time.Second, clk); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire while held: %v, want ErrHeld", err)
	}
	// Renewed, it stays held past its first expiry.
	clk.Step(8 * time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Step(8 * time.Second)
	if _, err := Acquire(ctx, cs, ns, name, "b", 10*time.Second, clk); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire while renewed: %v, want ErrHeld", err)
	}
	// Expired: taken over.
	clk.Step(3 * time.Second)
	b, err := Acquire(ctx, cs, ns, name, "b", 10*time.Second, clk)
	if err != nil {
		t.Fatalf("acquire an expired lease: %v", err)
	}
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(l.Spec.HolderIdentity, "") != "b" || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 || ptr.Deref(l.Spec.LeaseDurationSeconds, 0) != 10 {
		t.Errorf("lease spec %+v", l.Spec)
	}
	// The old holder can no longer renew it, nor release it.
	if err := a.Renew(ctx); !errors.Is(err, ErrLost) {
		t.Errorf("renew by the old holder: %v, want ErrLost", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("release by the old holder: %v, want nothing done", err)
	}
	if l, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{}); err != nil || ptr.Deref(l.Spec.HolderIdentity, "") != "b" {
		t.Errorf("after the old holder's release: %v, %v", l, err)
	}
	// Released: free at once.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(ctx, cs, ns, name, "c", 10*time.Second, clk); err != nil {
		t.Errorf("acquire a released lease: %v", err)
	}
}

func TestAcquireRefusesShortDuration(t *testing.T) {
	if _, err := Acquire(context.Background(), fake.NewClientset(), ns, name, "a", time.Millisecond, nil); err == nil {
		t.Error("a lease of a millisecond was accepted")
	}
}

func TestKeepRenews(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := Acquire(ctx, cs, ns, name, "a", 3*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := l.Keep(ctx)
	defer stop()
	for i := range 5 {
		// Wait for the keeper to wait on the clock, then let a third of the
		// duration pass.
		deadline := time.Now().Add(10 * time.Second)
		for !clk.HasWaiters() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the keeper does not wait", i)
			}
			time.Sleep(time.Millisecond)
		}
		clk.Step(time.Second)
	}
	// Renewed all along: not expired for another run.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !expired(cur, clk.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease was not renewed")
		}
		time.Sleep(time.Millisecond)
	}
	if kctx.Err() != nil {
		t.Errorf("keep context ended: %v", context.Cause(kctx))
	}
}

// step waits for the keeper to wait on the clock, then lets d pass.
func step(t *testing.T, clk *clocktesting.FakeClock, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the keeper does not wait on the clock")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Step(d)
}

// settled waits for the keeper to wait on the clock again, or to end.
func settled(t *testing.T, clk *clocktesting.FakeClock, kctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !clk.HasWaiters() && kctx.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the keeper neither waits nor ends")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKeepRenewsBeforeExpiry: with the default schedule (15 s), each renewal
// lands a third of the duration after the previous one, so another run never
// finds the Lease expired.
func TestKeepRenewsBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	cs := newClientset()
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := Acquire(ctx, cs, ns, name, "a", 15*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := l.Keep(ctx)
	defer stop()
	for i := range 6 {
		step(t, clk, 5*time.Second)
		settled(t, clk, kctx)
		cur, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !cur.Spec.RenewTime.Time.Equal(clk.Now()) {
			t.Fatalf("round %d: renewed at %s, want %s", i, cur.Spec.RenewTime, clk.Now())
		}
		if _, err := Acquire(ctx, cs, ns, name, "b", 15*time.Second, clk); !errors.Is(err, ErrHeld) {
			t.Fatalf("round %d: another run's acquire: %v, want ErrHeld", i, err)
		}
	}
	if kctx.Err() != nil {
		t.Errorf("keep context ended: %v", context.Cause(kctx))
	}
}

// TestKeepCancelsWhenTaken: a renewal that finds the Lease written by
// another holder cancels the run's context at once, with ErrLost.
func TestKeepCancelsWhenTaken(t *testing.T) {
	ctx := context.Background()
	cs := newClientset()
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := Acquire(ctx, cs, ns, name, "a", 15*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := l.Keep(ctx)
	defer stop()
	// Another holder writes the Lease (as after an expiry seen with a
	// skewed clock).
	cur, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.HolderIdentity = ptr.To("b")
	if _, err := cs.CoordinationV1().Leases(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	step(t, clk, 5*time.Second)
	select {
	case <-kctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run's context was not cancelled")
	}
	if cause := context.Cause(kctx); !errors.Is(cause, ErrLost) {
		t.Errorf("cause %v, want ErrLost", cause)
	}
	// Its release leaves the other holder's Lease alone.
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{}); ptr.Deref(got.Spec.HolderIdentity, "") != "b" {
		t.Errorf("holder %q after the old holder's release, want b", ptr.Deref(got.Spec.HolderIdentity, ""))
	}
}

// TestKeepCancelsWhenRenewalsFail: renewals failing (the API server
// answering 500) are retried; the run's context is cancelled, with ErrLost,
// once none succeeded for two thirds of the duration, before the Lease
// expires for another run; not before.
func TestKeepCancelsWhenRenewalsFail(t *testing.T) {
	ctx := context.Background()
	cs := newClientset()
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := Acquire(ctx, cs, ns, name, "a", 15*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	var attempts int
	var mu sync.Mutex
	cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		return true, nil, apierrors.NewInternalError(errors.New("etcd is away"))
	})
	kctx, stop := l.Keep(ctx)
	defer stop()
	acquired := clk.Now()
	step(t, clk, 5*time.Second)
	for clk.Since(acquired) < 10*time.Second {
		settled(t, clk, kctx)
		if kctx.Err() != nil {
			t.Fatalf("cancelled %s after the last renewal, before the deadline: %v", clk.Since(acquired), context.Cause(kctx))
		}
		step(t, clk, time.Second)
	}
	select {
	case <-kctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("not cancelled %s after the last renewal", clk.Since(acquired))
	}
	if cause := context.Cause(kctx); !errors.Is(cause, ErrLost) {
		t.Errorf("cause %v, want ErrLost", cause)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts < 3 {
		t.Errorf("%d renewal attempts before giving up, want retries", attempts)
	}
}

// TestKeepStop: stop ends the renewals; the Lease is released after it.
func TestKeepStop(t *testing.T) {
	ctx := context.Background()
	cs := newClientset()
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := Acquire(ctx, cs, ns, name, "a", 15*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := l.Keep(ctx)
	step(t, clk, 5*time.Second)
	settled(t, clk, kctx)
	stop()
	if kctx.Err() == nil {
		t.Error("the keep context outlives stop")
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(ctx, cs, ns, name, "b", 15*time.Second, clk); err != nil {
		t.Errorf("acquire after release: %v", err)
	}
}
