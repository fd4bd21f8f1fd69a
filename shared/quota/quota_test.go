package quota

import (
	"errors"
	"slices"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/model"
)

func TestTracker(t *testing.T) {
	limits := config.Quotas{MaxInitializing: 2, MaxStarted: 3}
	tr := NewTracker(Initializing, limits, 1)
	if tr.Free() != 1 {
		t.Errorf("free %d, want 1", tr.Free())
	}
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
	if tr.Count() != 2 || tr.Free() != 0 || tr.Excess() != 0 || tr.Err() != nil {
		t.Errorf("count %d, free %d, excess %d, err %v", tr.Count(), tr.Free(), tr.Excess(), tr.Err())
	}
	tr.Release()
	if err := tr.Take(); err != nil {
		t.Errorf("take after a release: %v", err)
	}

	tr = NewTracker(Started, limits, 5)
	if tr.Excess() != 2 || tr.Free() != 0 {
		t.Errorf("excess %d, free %d; want 2, 0", tr.Excess(), tr.Free())
	}
	if err := tr.Err(); err == nil || err.Error() != "5 builds started, quota 3 (RUNBOAT_MAX_STARTED)" {
		t.Errorf("err %v", err)
	}
	tr = NewTracker(Deployed, limits, 0)
	tr.Release()
	if tr.Count() != 0 {
		t.Errorf("count %d after releasing nothing", tr.Count())
	}
}

func initJob(name string, phase model.JobPhase, deleting bool) batchv1.Job {
	j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{model.LabelJobKind: string(model.JobInitialize)}}}
	switch phase {
	case model.JobSucceeded:
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	case model.JobFailed:
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
	}
	if deleting {
		j.DeletionTimestamp = ptr.To(metav1.Now())
	}
	return j
}

func TestCount(t *testing.T) {
	build := func(name string, init model.InitStatus, status model.Status) model.Build {
		return model.Build{Name: name, InitStatus: init, Status: status}
	}
	for _, tc := range []struct {
		name     string
		build    model.Build
		initJobs map[string][]batchv1.Job
		want     Counts
	}{
		{"init Job running", build("a", model.InitStarted, model.StatusInitializing), nil, Counts{Initializing: 1, Deployed: 1}},
		{"to initialize", build("a", model.InitTodo, model.StatusInitializing), nil, Counts{Deployed: 1}},
		{"unknown init-status", build("a", "paused", model.StatusInitializing), nil, Counts{Deployed: 1}},
		{"started", build("a", model.InitSucceeded, model.StatusStarted), nil, Counts{Started: 1, Deployed: 1}},
		{"starting", build("a", model.InitSucceeded, model.StatusStarting), nil, Counts{Started: 1, Deployed: 1}},
		{"stopping", build("a", model.InitSucceeded, model.StatusStopping), nil, Counts{Deployed: 1}},
		{"stopped", build("a", model.InitSucceeded, model.StatusStopped), nil, Counts{Deployed: 1}},
		{"failed", build("a", model.InitFailed, model.StatusFailed), nil, Counts{Deployed: 1}},
		{"undeploying", build("a", model.InitSucceeded, model.StatusUndeploying), nil, Counts{}},
		{
			"undeploying, its init Job running",
			build("a", model.InitStarted, model.StatusUndeploying),
			map[string][]batchv1.Job{"a": {initJob("a-1", model.JobFailed, false), initJob("a-2", model.JobRunning, false)}},
			Counts{Initializing: 1},
		},
		{
			"undeploying, its init Job being deleted",
			build("a", model.InitStarted, model.StatusUndeploying),
			map[string][]batchv1.Job{"a": {initJob("a", model.JobRunning, true)}},
			Counts{Initializing: 1},
		},
		{
			"undeploying, its init Job ended",
			build("a", model.InitStarted, model.StatusUndeploying),
			map[string][]batchv1.Job{"a": {initJob("a", model.JobSucceeded, false)}},
			Counts{},
		},
		{
			"undeploying, its init Job killed",
			build("a", model.InitStarted, model.StatusUndeploying),
			map[string][]batchv1.Job{"a": nil},
			Counts{},
		},
		{"undeploying, its init Jobs not read: as annotated", build("a", model.InitStarted, model.StatusUndeploying), nil, Counts{Initializing: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Count(slices.Values([]model.Build{tc.build}), tc.initJobs); got != tc.want {
				t.Errorf("counts %+v, want %+v", got, tc.want)
			}
		})
	}
}
