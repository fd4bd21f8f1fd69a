package quota

import (
	"errors"
	"testing"

	"runboat.dev/shared/config"
	"runboat.dev/shared/model"
)

var q = config.Quotas{MaxInitializing: 2, MaxStarted: 3, MaxDeployed: 4}

func TestTracker(t *testing.T) {
	tr := NewTracker(Initializing, q, 1)
	if err := tr.Take(); err != nil {
		t.Fatalf("take the second slot: %v", err)
	}
	err := tr.Take()
	var ex *ExceededError
	if !errors.As(err, &ex) || ex.Quota != Initializing || ex.Count != 2 || ex.Limit != 2 {
		t.Fatalf("take a third slot: %v, want an *ExceededError", err)
	}
	if err.Error() != "2 builds initializing, quota 2 (RUNBOAT_MAX_INITIALIZING)" {
		t.Errorf("error %q", err)
	}
	if tr.Count() != 2 || tr.Excess() != 0 || tr.Err() != nil {
		t.Errorf("count %d, excess %d, err %v", tr.Count(), tr.Excess(), tr.Err())
	}
	tr.Release()
	if err := tr.Take(); err != nil {
		t.Errorf("take after a release: %v", err)
	}
}

func TestTrackerExcess(t *testing.T) {
	tr := NewTracker(Started, q, 5)
	if tr.Excess() != 2 {
		t.Errorf("excess %d, want 2", tr.Excess())
	}
	if err := tr.Err(); err == nil || err.Error() != "5 builds started, quota 3 (RUNBOAT_MAX_STARTED)" {
		t.Errorf("err %v", err)
	}
	tr = NewTracker(Deployed, q, 0)
	tr.Release()
	if tr.Count() != 0 {
		t.Errorf("count %d after releasing nothing", tr.Count())
	}
}

func TestCountAndCheck(t *testing.T) {
	bs := []model.Build{
		{InitStatus: model.InitStarted, Status: model.StatusInitializing},
		{InitStatus: model.InitTodo, Status: model.StatusInitializing},
		{InitStatus: model.InitStarted, Status: model.StatusUndeploying},
		{InitStatus: model.InitSucceeded, Status: model.StatusStarted},
		{InitStatus: model.InitSucceeded, Status: model.StatusStarting},
		{InitStatus: model.InitSucceeded, Status: model.StatusStopping},
		{InitStatus: model.InitFailed, Status: model.StatusFailed},
	}
	c := Count(bs)
	if want := (Counts{Initializing: 1, Started: 2, Deployed: 6}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	err := Check(q, c)
	var ex *ExceededError
	if !errors.As(err, &ex) || ex.Quota != Deployed {
		t.Errorf("check: %v, want deployed exceeded", err)
	}
	if err := Check(config.Quotas{MaxInitializing: 1, MaxStarted: 2, MaxDeployed: 6}, c); err != nil {
		t.Errorf("check at the limits: %v", err)
	}
}
