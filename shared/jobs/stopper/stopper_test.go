package stopper

import (
	"slices"
	"strings"
	"testing"
	"time"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	jt "runboat.dev/shared/testenv/jobstest"
)

var quotas = config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 10}

// stopped returns the builds the plan stops, in order, and why.
func stopped(p runner.Plan) (names, whys []string) {
	for _, a := range p.Actions {
		s := a.(*stop)
		names = append(names, s.b.Name)
		whys = append(whys, s.why)
	}
	return names, whys
}

func at(minutes int) time.Time { return jt.T0.Add(time.Duration(minutes) * time.Minute) }

func TestPlanStopsLeastRecentlyScaled(t *testing.T) {
	bs := jt.Builds(
		jt.Spec{N: 1, Replicas: 1, Ready: 1, LastScaled: at(50)},
		jt.Spec{N: 2, Replicas: 1, Ready: 1, LastScaled: at(10)},
		jt.Spec{N: 3, Replicas: 1, Ready: 0, LastScaled: at(20)}, // starting
		jt.Spec{N: 4, Replicas: 1, Ready: 1, LastScaled: at(40)},
		jt.Spec{N: 5, Replicas: 0, Ready: 1, LastScaled: at(1)},                         // stopping
		jt.Spec{N: 6, Replicas: 0, LastScaled: at(2)},                                   // stopped
		jt.Spec{N: 7, Replicas: 1, Ready: 1, LastScaled: at(3), Init: model.InitFailed}, // failed
		jt.Spec{N: 8, Replicas: 1, Ready: 1, LastScaled: at(4), Deleting: true},         // undeploying
	)
	names, whys := stopped(Plan(bs, Settings{Quotas: quotas}, at(60)))
	if want := []string{bs[1].Name, bs[2].Name}; !slices.Equal(names, want) {
		t.Errorf("stopped %v, want %v (least recently scaled first, starting ones included)", names, want)
	}
	for _, w := range whys {
		if !strings.HasPrefix(w, "4 builds started, quota 2 (RUNBOAT_MAX_STARTED)") {
			t.Errorf("why %q", w)
		}
	}
}

func TestPlanWithinQuota(t *testing.T) {
	bs := jt.Builds(jt.Spec{N: 1, Replicas: 1, Ready: 1}, jt.Spec{N: 2, Replicas: 1, Ready: 1}, jt.Spec{N: 3})
	if p := Plan(bs, Settings{Quotas: quotas}, at(60)); len(p.Actions) != 0 || !p.Wake.IsZero() {
		t.Errorf("plan %v, wake %v; want nothing", p.Actions, p.Wake)
	}
}

func TestPlanMaxStartedAge(t *testing.T) {
	bs := jt.Builds(
		jt.Spec{N: 1, Replicas: 1, Ready: 1, LastScaled: at(0)},
		jt.Spec{N: 2, Replicas: 1, Ready: 1, LastScaled: at(30)},
		jt.Spec{N: 3, Replicas: 1, Ready: 1, LastScaled: at(45)},
	)
	s := Settings{Quotas: quotas, MaxStartedAge: time.Hour}
	// At 60: only the first is too old; the other two fit the quota.
	p := Plan(bs, s, at(60))
	names, whys := stopped(p)
	if !slices.Equal(names, []string{bs[0].Name}) || !strings.Contains(whys[0], "RUNBOAT_MAX_STARTED_AGE") {
		t.Errorf("stopped %v %v, want the first for its age", names, whys)
	}
	if want := at(90); !p.Wake.Equal(want) {
		t.Errorf("wake %v, want %v, when the next is too old", p.Wake, want)
	}
	// Quota 1: the age stop counts, one more is stopped for the quota.
	s.Quotas.MaxStarted = 1
	names, _ = stopped(Plan(bs, s, at(60)))
	if !slices.Equal(names, []string{bs[0].Name, bs[1].Name}) {
		t.Errorf("stopped %v", names)
	}
}

func TestPlanTies(t *testing.T) {
	// Same last-scaled: the older build first, then by name.
	bs := jt.Builds(
		jt.Spec{N: 3, Replicas: 1, Ready: 1, LastScaled: at(100)},
		jt.Spec{N: 1, Replicas: 1, Ready: 1, LastScaled: at(100)},
		jt.Spec{N: 2, Replicas: 1, Ready: 1, LastScaled: at(100)},
	)
	s := Settings{Quotas: quotas}
	s.Quotas.MaxStarted = 1
	names, _ := stopped(Plan(bs, s, at(200)))
	if want := []string{bs[1].Name, bs[2].Name}; !slices.Equal(names, want) {
		t.Errorf("stopped %v, want %v", names, want)
	}
}
