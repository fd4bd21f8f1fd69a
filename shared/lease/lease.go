// Package lease gives a run of a job mutual exclusion with the other runs of
// the same kind: it holds a coordination.k8s.io Lease for the run, renews it
// while the run goes on, and releases it at the end. A run that finds the
// Lease held, not expired, by a holder not known to have ended, gets ErrHeld
// and should exit without doing anything.
//
// Every write of the Lease carries the resourceVersion read, so of two runs
// taking it at the same moment one wins and the other gets ErrHeld.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/kube"
)

// ErrHeld is returned (wrapped) by Acquire when another run holds the Lease.
var ErrHeld = errors.New("the lease is held by another run")

// ErrLost is the cause of the context of Keep when the Lease could not be
// renewed in time: another run may have taken it.
var ErrLost = errors.New("the lease was lost")

// Lease is a held Lease.
type Lease struct {
	client   kube.Interface
	ns, name string
	identity string
	duration time.Duration
	clock    clock.Clock

	// TakenOver says, when the Lease was taken from a holder whose
	// process had ended before it expired, from whom and how that was
	// known; empty otherwise.
	TakenOver string

	mu      sync.Mutex
	current *coordinationv1.Lease
	renewed time.Time
}

// Acquire takes the Lease ns/name for identity, for duration (renewed by
// Keep), creating it if needed. It returns an error wrapping ErrHeld when
// another holder has it, has not expired, and is not known to have ended
// (see holder).
func Acquire(ctx context.Context, client kube.Interface, ns, name, identity string, duration time.Duration, clk clock.Clock) (*Lease, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if duration < time.Second {
		return nil, fmt.Errorf("failed to acquire lease %s: duration %s under a second", name, duration)
	}
	l := &Lease{client: client, ns: ns, name: name, identity: identity, duration: duration, clock: clk}
	leases := client.CoordinationV1().Leases(ns)
	now := clk.Now()
	cur, err := leases.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		created, err := leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       l.spec(now, now, 0),
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("failed to acquire lease %s: %w (created at the same moment)", name, ErrHeld)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to create lease %s: %w", name, err)
		}
		l.set(created, now)
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("failed to read lease %s: %w", name, err)
	}
	if holder := ptr.Deref(cur.Spec.HolderIdentity, ""); holder != "" && holder != identity && !expired(cur, now) {
		gone, why := holderGone(ctx, client, ns, holder)
		if !gone {
			return nil, fmt.Errorf("failed to acquire lease %s: %w (holder %s: %s)", name, ErrHeld, holder, why)
		}
		l.TakenOver = fmt.Sprintf("from %s before it expired: %s", holder, why)
	}
	next := cur.DeepCopy()
	next.Spec = l.spec(now, now, ptr.Deref(cur.Spec.LeaseTransitions, 0)+1)
	updated, err := leases.Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil, fmt.Errorf("failed to acquire lease %s: %w (taken at the same moment)", name, ErrHeld)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to take lease %s: %w", name, err)
	}
	l.set(updated, now)
	return l, nil
}

// expired tells whether a Lease's holder has not renewed it in time.
func expired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	end := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	return !now.Before(end)
}

func (l *Lease) spec(acquired, renewed time.Time, transitions int32) coordinationv1.LeaseSpec {
	return coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(l.identity),
		LeaseDurationSeconds: ptr.To(int32((l.duration + time.Second - 1) / time.Second)),
		AcquireTime:          ptr.To(metav1.NewMicroTime(acquired)),
		RenewTime:            ptr.To(metav1.NewMicroTime(renewed)),
		LeaseTransitions:     ptr.To(transitions),
	}
}

func (l *Lease) set(cur *coordinationv1.Lease, renewed time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current, l.renewed = cur, renewed
}

// Renew extends the Lease from now. It fails if another holder took it.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	next := l.current.DeepCopy()
	l.mu.Unlock()
	now := l.clock.Now()
	if ptr.Deref(next.Spec.HolderIdentity, "") != l.identity {
		return fmt.Errorf("failed to renew lease %s: %w", l.name, ErrLost)
	}
	next.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now))
	updated, err := l.client.CoordinationV1().Leases(l.ns).Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to renew lease %s: %w: %w", l.name, ErrLost, err)
		}
		return fmt.Errorf("failed to renew lease %s: %w", l.name, err)
	}
	l.set(updated, now)
	return nil
}

// The renewal schedule, as fractions of the Lease's duration d (with the
// default 15 s: renewed every 5 s, retried every second after a failure,
// given up 10 s after the last renewal, 5 s before another run may take the
// Lease). Kubernetes' leader election uses the same 15 s and 10 s, retrying
// every 2 s; renewing every third of the duration gives each renewal two more
// chances before the deadline, at one write per 5 s per running job.
const (
	renewEvery = 3  // a renewal every d/3
	retryEvery = 15 // after a failed renewal, a retry every d/15
)

// renewDeadline is how long after the last renewal a run gives up the Lease
// and stops: two thirds of the duration, leaving a third for the run's
// requests in flight to end before another run may take it.
func (l *Lease) renewDeadline() time.Duration { return 2 * l.duration / 3 }

// timeLeft is how long the run may still act before it must have renewed
// the Lease: renewDeadline after the last renewal, less the time since.
func (l *Lease) timeLeft() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewDeadline() - l.clock.Since(l.renewed)
}

// Keep renews the Lease in the background every third of its duration
// (retrying sooner after a failure) until stop is called. The returned
// context is cancelled, with a cause wrapping ErrLost, as soon as a renewal
// finds the Lease taken by another holder (or deleted), or when no renewal
// succeeded for two thirds of the duration since the last one: the run must
// then stop acting, before another run may take the Lease. Each renewal is
// bounded by the time left to that deadline.
func (l *Lease) Keep(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		wait := l.duration / renewEvery
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-l.clock.After(wait):
			}
			left := l.timeLeft()
			if left <= 0 {
				cancel(fmt.Errorf("failed to renew lease %s within %s: %w", l.name, l.renewDeadline(), ErrLost))
				return
			}
			rctx, rcancel := context.WithTimeout(ctx, left)
			err := l.Renew(rctx)
			rcancel()
			switch {
			case err == nil:
				wait = l.duration / renewEvery
				continue
			case errors.Is(err, ErrLost):
				cancel(err)
				return
			case ctx.Err() != nil:
				return
			}
			left = l.timeLeft()
			if left <= 0 {
				cancel(fmt.Errorf("%w: no renewal within %s: %w", ErrLost, l.renewDeadline(), err))
				return
			}
			wait = min(l.duration/retryEvery, left)
		}
	})
	return ctx, func() {
		close(done)
		wg.Wait()
		cancel(nil)
	}
}

// Release gives the Lease up, so that the next run need not wait for it to
// expire. Releasing a Lease another holder has taken does nothing.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	next := l.current.DeepCopy()
	l.mu.Unlock()
	if ptr.Deref(next.Spec.HolderIdentity, "") != l.identity {
		return nil
	}
	next.Spec.HolderIdentity = nil
	next.Spec.RenewTime = ptr.To(metav1.NewMicroTime(l.clock.Now()))
	next.Spec.LeaseDurationSeconds = ptr.To[int32](1)
	updated, err := l.client.CoordinationV1().Leases(l.ns).Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to release lease %s: %w", l.name, err)
	}
	l.set(updated, l.clock.Now())
	return nil
}
