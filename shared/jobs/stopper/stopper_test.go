package stopper

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	jt "runboat.dev/shared/testenv/jobstest"
)

var quotas = config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 10}

// short names a stop and its build by number.
func short(a runner.Action) string {
	if s, ok := a.(*stop); ok {
		return fmt.Sprintf("stop #%d", jt.N(s.b))
	}
	return ""
}

func at(minutes int) time.Time { return jt.T0.Add(time.Duration(minutes) * time.Minute) }

func TestPlan(t *testing.T) {
	aging := []jt.Spec{
		{N: 1, Replicas: 1, Ready: 1, LastScaled: at(0)},
		{N: 2, Replicas: 1, Ready: 1, LastScaled: at(30)},
		{N: 3, Replicas: 1, Ready: 1, LastScaled: at(45)},
	}
	for _, tc := range []struct {
		name   string
		builds []jt.Spec
		// maxStarted is MAX_STARTED, 2 when 0; maxAge MAX_STARTED_AGE.
		maxStarted int
		maxAge     time.Duration
		want       []string
		// why is in the reason of every stop.
		why string
		// wake is when the plan wakes, in minutes after T0; 0 for never.
		wake int
	}{
		{
			name: "the least recently scaled are stopped, starting ones included",
			builds: []jt.Spec{
				{N: 1, Replicas: 1, Ready: 1, LastScaled: at(50)},
				{N: 2, Replicas: 1, Ready: 1, LastScaled: at(10)},
				{N: 3, Replicas: 1, Ready: 0, LastScaled: at(20)}, // starting
				{N: 4, Replicas: 1, Ready: 1, LastScaled: at(40)},
				{N: 5, Replicas: 0, Ready: 1, LastScaled: at(1)},                         // stopping
				{N: 6, Replicas: 0, LastScaled: at(2)},                                   // stopped
				{N: 7, Replicas: 1, Ready: 1, LastScaled: at(3), Init: model.InitFailed}, // failed
				{N: 8, Replicas: 1, Ready: 1, LastScaled: at(4), Deleting: true},         // undeploying
			},
			want: []string{"stop #2", "stop #3"},
			why:  "4 builds started, quota 2 (RUNBOAT_MAX_STARTED): least recently started",
		},
		{
			name:   "within the quota: nothing",
			builds: []jt.Spec{{N: 1, Replicas: 1, Ready: 1}, {N: 2, Replicas: 1, Ready: 1}, {N: 3}},
		},
		{
			name:   "started too long ago: stopped; the plan wakes when the next is",
			builds: aging,
			maxAge: time.Hour,
			want:   []string{"stop #1"},
			why:    "started for more than 1h0m0s (RUNBOAT_MAX_STARTED_AGE)",
			wake:   90,
		},
		{
			name:       "a stop for age frees its slot: one more is stopped for the quota",
			builds:     aging,
			maxAge:     time.Hour,
			maxStarted: 1,
			want:       []string{"stop #1", "stop #2"},
			wake:       90,
		},
		{
			name: "same last-scaled: the older build first, then by name",
			builds: []jt.Spec{
				{N: 3, Replicas: 1, Ready: 1, LastScaled: at(100)},
				{N: 1, Replicas: 1, Ready: 1, LastScaled: at(100)},
				{N: 2, Replicas: 1, Ready: 1, LastScaled: at(100)},
			},
			maxStarted: 1,
			want:       []string{"stop #1", "stop #2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Settings{Quotas: quotas, MaxStartedAge: tc.maxAge}
			if tc.maxStarted != 0 {
				s.Quotas.MaxStarted = tc.maxStarted
			}
			p := Plan(jt.Builds(tc.builds...), s, at(60))
			jt.Check(t, p, short, tc.want...)
			for _, a := range p.Actions {
				if why := a.(*stop).why; !strings.Contains(why, tc.why) {
					t.Errorf("why %q, want %q in it", why, tc.why)
				}
			}
			jt.CheckWake(t, p, tc.wake)
		})
	}
}

// TestDryRunGolden: what --dry-run prints for a cluster where the stopper
// stops builds for their age and for the quota, which is what a real run
// does.
func TestDryRunGolden(t *testing.T) {
	bs := jt.Builds(
		jt.Spec{N: 1, Replicas: 1, Ready: 1, LastScaled: at(0)},                         // started too long ago
		jt.Spec{N: 2, Replicas: 1, Ready: 1, LastScaled: at(100)},                       // least recently started
		jt.Spec{N: 3, Replicas: 1, Ready: 0, LastScaled: at(110)},                       // starting, next
		jt.Spec{N: 4, Replicas: 1, Ready: 1, LastScaled: at(150)},                       // kept
		jt.Spec{N: 5, Replicas: 1, Ready: 1, LastScaled: at(160)},                       // kept
		jt.Spec{N: 6, Replicas: 0, Ready: 1, LastScaled: at(5)},                         // stopping
		jt.Spec{N: 7, LastScaled: at(5)},                                                // stopped
		jt.Spec{N: 8, Replicas: 1, Ready: 1, LastScaled: at(5), Init: model.InitFailed}, // failed
		jt.Spec{N: 9, Replicas: 1, Ready: 1, LastScaled: at(5), Deleting: true},         // undeploying
	)
	cfg := jt.Config(config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 100})
	cfg.MaxStartedAge = 3 * time.Hour
	env := jt.Env(t, cfg, Name, at(200), jt.Objects(bs)...)
	jt.Golden(t, "dry-run", jt.DryRun(t, env, Job{}))
}
