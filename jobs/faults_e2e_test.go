package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/testenv/faults"
)

// apiFaults are the faults of TestE2EFaultsConverge: every kind, on every
// request, about one request in eight faulted in all.
var apiFaults = faults.Every(1)

// TestE2EFaultsConverge runs the webhook's deployer and every job through
// the fault-injecting transport: each delivery or run either does its work
// or fails with an error; meanwhile the invariant checker sees no quota
// exceeded, no duplicate build, nothing left over; once the faults stop,
// a redelivery of what failed and clean runs converge: every build
// initialized once, started ones stopped down to the quota, and, all
// undeployed, nothing left.
func TestE2EFaultsConverge(t *testing.T) {
	t.Parallel()
	q := config.Quotas{MaxInitializing: 2, MaxStarted: 1, MaxDeployed: 10}
	h := newHarness(t, q, rule("^acme/app$", map[string]string{"initialize_kwok_delay": "1s"}))
	checker := h.checker(q.MaxInitializing)
	h.watch(checker)
	inj, err := faults.New(11, apiFaults...)
	if err != nil {
		t.Fatal(err)
	}
	// The webhook's deployer, as the admin, through the faults.
	rc := rest.CopyConfig(h.e.Config)
	rc.Wrap(inj.Wrap)
	clients, err := kube.NewClients(rc)
	if err != nil {
		t.Fatal(err)
	}
	faulty := deploy.New(h.cfg.Builds, clients, clock.RealClock{})

	// Each delivery, redelivered (as GitHub's redeliver or the reconciler
	// would) until one is answered 201, up to five times through the
	// faults, the builds of the last ones to fail are left to the
	// redelivery without faults below.
	var refs []model.Ref
	failed := map[int]bool{}
	for i := range 6 {
		ref, err := model.NewRef("acme/app", fmt.Sprintf("branch-%d", i), 0, sha(i))
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
		checker.Accepted(ref, false)
		failed[i] = true
		for try := range 5 {
			if _, _, err := faulty.Deploy(h.ctx(), ref); err != nil {
				t.Logf("delivery %d, try %d, failed: %v", i, try, err)
				continue
			}
			delete(failed, i)
			break
		}
	}

	jobs := []runner.Job{initializer.Job{}, stopper.Job{}, undeployer.Job{}}
	runs, runErrs := 0, 0
	for round := range 12 {
		// What the console does meanwhile, as the admin, without faults.
		if round == 4 {
			for name, b := range h.builds() {
				if b.InitStatus == model.InitSucceeded {
					h.ask(name, (*ops.Ops).Start)
				}
			}
		}
		for _, job := range jobs {
			ctx, cancel := context.WithTimeout(h.ctx(), 30*time.Second)
			err := runner.Run(ctx, h.env(job.Name(), inj.Wrap), job, runner.Options{})
			cancel()
			runs++
			if err != nil {
				runErrs++
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("round %d: %s hung until its deadline: %v", round, job.Name(), err)
				}
				t.Logf("round %d: %s failed: %v", round, job.Name(), err)
			}
		}
	}
	by, requests := inj.Injected()
	t.Logf("%d job runs, %d failed; faults injected %v into %d requests", runs, runErrs, by, requests)
	if len(by) == 0 {
		t.Fatal("no fault injected")
	}
	inj.Stop()

	// GitHub's redelivery of what failed, without faults.
	for i := range failed {
		if _, _, err := h.deployer.Deploy(h.ctx(), refs[i]); err != nil {
			t.Fatalf("redelivery %d: %v", i, err)
		}
	}
	for _, job := range jobs {
		h.waitLeaseFree(job)
	}
	h.until("every build to be initialized", 3*time.Minute, []runner.Job{initializer.Job{}}, func(bs map[string]model.Build) bool {
		for _, b := range bs {
			if b.InitStatus != model.InitSucceeded {
				return false
			}
		}
		return len(bs) == len(refs)
	})
	for name := range h.builds() {
		if n := len(h.jobsOf(model.JobInitialize, name)); n != 1 {
			t.Errorf("build %s: %d init Jobs, want 1", name, n)
		}
	}
	h.until("the started builds to be stopped down to the quota", time.Minute, []runner.Job{stopper.Job{}}, func(bs map[string]model.Build) bool {
		return h.counts(bs).Started <= q.MaxStarted
	})
	if err := checker.Settled(h.ctx(), 2*time.Minute); err != nil {
		t.Error(err)
	}

	for _, ref := range refs {
		checker.Accepted(ref, true)
		h.ask(ref.Name(), (*ops.Ops).Undeploy)
	}
	h.until("every build to be gone", 3*time.Minute, []runner.Job{undeployer.Job{}}, func(bs map[string]model.Build) bool {
		return len(bs) == 0
	})
	if err := checker.Settled(h.ctx(), 2*time.Minute); err != nil {
		t.Error(err)
	}
}
