package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
)

// TestE2EAPIServerRestart restarts the API server (of a cluster of the
// test's own) while a lingering initializer works and deliveries arrive:
// the deliveries made during the outage fail and are redelivered, the
// lingering run keeps its Lease across the outage, its watches are made
// again and it initializes the builds made after the restart by itself;
// nothing is lost and the invariant checker sees no breach.
func TestE2EAPIServerRestart(t *testing.T) {
	t.Parallel()
	c := e2e.OwnCluster(t, "runboat-restart")
	q := config.Quotas{MaxInitializing: 2, MaxStarted: 1, MaxDeployed: 10}
	h := newHarnessOn(t, e2e.NewOn(t, c), q, rule("^acme/app$", map[string]string{"initialize_kwok_delay": "1s"}))
	checker := h.checker(q.MaxInitializing)
	h.watch(checker)
	deliver := func(i int) {
		ref, err := model.NewRef("acme/app", fmt.Sprintf("branch-%d", i), 0, sha(i))
		if err != nil {
			t.Error(err)
			return
		}
		checker.Accepted(ref, false)
		// Redelivered until answered, as GitHub's redeliver would.
		for try := 0; ; try++ {
			_, _, err := h.deployer.Deploy(h.ctx(), ref)
			if err == nil {
				return
			}
			if try == 120 {
				t.Errorf("delivery %d: %v", i, err)
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	for i := range 3 {
		deliver(i)
	}

	// A lingering initializer, with a Lease that outlasts the outage
	// (renewed every third of it, given up after two thirds).
	ctx, cancel := context.WithCancel(h.ctx())
	defer cancel()
	done := make(chan error, 1)
	env := h.env(initializer.Name, nil, func(o *runner.EnvOptions) { o.LeaseDuration = 45 * time.Second })
	go func() { done <- runner.Run(ctx, env, initializer.Job{}, runner.Options{Linger: 5 * time.Minute}) }()

	h.waitLeaseHeld(initializer.Job{})

	restarted := make(chan error, 1)
	go func() { restarted <- c.RestartAPIServer(context.Background(), 2*time.Second) }()
	for i := 3; i < 6; i++ {
		deliver(i) // some during the outage
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	deliver(6) // after it: only the lingering run's watch sees it

	waitFor(t, "the lingering run to initialize every build", 3*time.Minute, func(context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("the lingering run ended: %w", err)
		default:
		}
		bs := h.builds()
		for _, b := range bs {
			if b.InitStatus != model.InitSucceeded {
				return false, nil
			}
		}
		return len(bs) == 7, nil
	})
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("the lingering run, stopped: %v", err)
	}
	for name := range h.builds() {
		if n := len(h.jobsOf(model.JobInitialize, name)); n != 1 {
			t.Errorf("build %s: %d init Jobs, want 1", name, n)
		}
	}
	if err := checker.Settled(h.ctx(), time.Minute); err != nil {
		t.Error(err)
	}
}
