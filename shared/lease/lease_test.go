package lease

import (
	"context"
	"errors"
	"strconv"
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
