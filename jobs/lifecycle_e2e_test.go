package jobs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/quota"
)

// TestE2ELifecycle takes 10 builds of the demo kubefiles, made as the webhook
// makes them, through initialization, start (as the console starts them),
// stop, eviction and cleanup, with the three jobs acting as the manifests'
// ServiceAccount, and checks the quotas after every pass and, at the end,
// that every build is either kept by the rules or entirely gone.
func TestE2ELifecycle(t *testing.T) {
	t.Parallel()
	q := config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 6}
	h := newHarness(t, q, rule("^acme/app$", nil))

	type spec struct {
		branch string
		pr     int
	}
	specs := []spec{
		{"main", 0}, {"main", 0}, {"main", 0}, {"main", 0},
		{"16.0", 0}, {"16.0", 0}, {"16.0", 0},
		{"main", 11}, {"main", 11},
		{"16.0", 12},
	}
	var names []string
	for i, s := range specs {
		names = append(names, h.deploy("acme/app", s.branch, s.pr, i))
	}

	newest := newestOfBranches(h.builds())

	started := map[string]bool{}
	evicted := map[string]bool{}
	deadline := time.Now().Add(4 * time.Minute)
	for round := 1; ; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("round %d: builds did not settle: %v", round, h.builds())
		}
		h.run(initializer.Job{})
		if n := h.runningInitJobs(); n > q.MaxInitializing {
			t.Fatalf("round %d: %d init Jobs run after the initializer's pass, quota %d", round, n, q.MaxInitializing)
		}
		if c := h.counts(h.builds()); c.Initializing > q.MaxInitializing {
			t.Fatalf("round %d: %d builds initializing, quota %d", round, c.Initializing, q.MaxInitializing)
		}

		// Start every build once it is initialized, as a person would from
		// the console: more than MAX_STARTED, for the stopper to stop.
		for name, b := range h.builds() {
			if b.Status == model.StatusStopped && !started[name] {
				if !h.ask(name, (*ops.Ops).Start) {
					t.Fatalf("round %d: start %s: nothing done", round, name)
				}
				started[name] = true
			}
		}

		h.run(stopper.Job{})
		if c := h.counts(h.builds()); c.Started > q.MaxStarted {
			t.Fatalf("round %d: %d builds started after the stopper's pass, quota %d", round, c.Started, q.MaxStarted)
		}

		before := h.builds()
		h.run(undeployer.Job{})
		after := h.builds()
		for name, b := range after {
			if b.Status == model.StatusUndeploying && before[name].Status != model.StatusUndeploying {
				evicted[name] = true
			}
		}
		if c := h.counts(after); c.Deployed > q.MaxDeployed && evictable(after) > 0 {
			t.Fatalf("round %d: %d builds deployed after the undeployer's pass with %d evictable, quota %d", round, c.Deployed, evictable(after), q.MaxDeployed)
		}

		if settled(after, started, q, h.counts(after)) {
			break
		}
		time.Sleep(500 * time.Millisecond) // let the controllers and kwok move
	}

	final := h.builds()
	if len(final) != q.MaxDeployed {
		t.Errorf("%d builds left, want %d", len(final), q.MaxDeployed)
	}
	if len(evicted) != len(names)-q.MaxDeployed {
		t.Errorf("%d builds evicted, want %d", len(evicted), len(names)-q.MaxDeployed)
	}
	// The newest build of each branch is kept (builds made in the same
	// second are told apart by name, as the undeployer does).
	if len(newest) != 2 {
		t.Fatalf("newest builds of the branches %v, want one of main and one of 16.0", newest)
	}
	for _, name := range newest {
		if _, ok := final[name]; !ok {
			t.Errorf("the newest build of its branch, %s, was undeployed", name)
		}
	}
	for name, b := range final {
		if evicted[name] {
			t.Errorf("evicted build %s is still there", name)
		}
		if b.InitStatus != model.InitSucceeded {
			t.Errorf("build %s: init-status %s, want succeeded", name, b.InitStatus)
		}
		reasons := h.eventReasons(b.DeploymentName)
		for _, want := range []string{"Initializing", "Initialized", "Started"} {
			if !slices.Contains(reasons, want) {
				t.Errorf("build %s: events %v, want %s among them", name, reasons, want)
			}
		}
	}
	// Every evicted build is entirely gone, dependents included.
	for name := range evicted {
		waitFor(t, "every object of "+name+" to be gone", time.Minute, func(context.Context) (bool, error) {
			return len(h.leftovers(name)) == 0, nil
		})
	}
	for _, name := range names {
		if _, kept := final[name]; !kept && !evicted[name] {
			t.Errorf("build %s neither kept nor evicted", name)
		}
	}
}

// settled tells whether the lifecycle is over: every build initialized and
// started once, the quotas held, nothing being undeployed.
func settled(builds map[string]model.Build, started map[string]bool, q config.Quotas, c quota.Counts) bool {
	for name, b := range builds {
		if b.InitStatus != model.InitSucceeded || b.Status == model.StatusUndeploying || !started[name] {
			return false
		}
	}
	return c.Initializing <= q.MaxInitializing && c.Started <= q.MaxStarted && c.Deployed <= q.MaxDeployed
}

// newestOfBranches returns the name of the newest build of each branch
// among builds not being undeployed (by creation, then name), by branch.
func newestOfBranches(builds map[string]model.Build) map[string]string {
	newest := map[string]model.Build{}
	for _, b := range builds {
		if b.Status == model.StatusUndeploying || b.Ref.PR != 0 {
			continue
		}
		k := b.Ref.Repo + " " + b.Ref.TargetBranch
		if cur, ok := newest[k]; !ok || b.Created.After(cur.Created) || (b.Created.Equal(cur.Created) && b.Name > cur.Name) {
			newest[k] = b
		}
	}
	out := map[string]string{}
	for k, b := range newest {
		out[k] = b.Name
	}
	return out
}

// evictable counts the builds the undeployer may undeploy: stopped or
// failed, not the newest of their branch.
func evictable(builds map[string]model.Build) int {
	newest := newestOfBranches(builds)
	n := 0
	for _, b := range builds {
		switch b.Status {
		case model.StatusStopped, model.StatusStopping, model.StatusFailed:
			if b.Ref.PR == 0 && newest[b.Ref.Repo+" "+b.Ref.TargetBranch] == b.Name {
				continue
			}
			n++
		}
	}
	return n
}
