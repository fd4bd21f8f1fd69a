package model

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestJobOutcome(t *testing.T) {
	cond := func(typ batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: status, Reason: reason, Message: message}
	}
	for _, tc := range []struct {
		name       string
		conditions []batchv1.JobCondition
		phase      JobPhase
		reason     string
	}{
		{"no condition", nil, JobRunning, ""},
		{"failure target only", []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue, "BackoffLimitExceeded", "")}, JobRunning, ""},
		{"complete", []batchv1.JobCondition{cond(batchv1.JobComplete, corev1.ConditionTrue, "", "")}, JobSucceeded, ""},
		{"complete, not true", []batchv1.JobCondition{cond(batchv1.JobComplete, corev1.ConditionFalse, "", "")}, JobRunning, ""},
		{
			"failed, with a message",
			[]batchv1.JobCondition{cond(batchv1.JobFailed, corev1.ConditionTrue, "DeadlineExceeded", "Job was active longer than specified deadline")},
			JobFailed, "DeadlineExceeded: Job was active longer than specified deadline",
		},
		{"failed, no reason", []batchv1.JobCondition{cond(batchv1.JobFailed, corev1.ConditionTrue, "", "")}, JobFailed, "Failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := &batchv1.Job{Status: batchv1.JobStatus{Conditions: tc.conditions}}
			if phase, reason := JobOutcome(j); phase != tc.phase || reason != tc.reason {
				t.Errorf("outcome %v %q, want %v %q", phase, reason, tc.phase, tc.reason)
			}
		})
	}
}

func TestNewestJob(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	job := func(name string, kind JobKind, created time.Time, deleting bool) batchv1.Job {
		j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created), Labels: map[string]string{LabelJobKind: string(kind)}}}
		if deleting {
			j.DeletionTimestamp = &metav1.Time{Time: created}
		}
		return j
	}
	jobs := []batchv1.Job{
		job("b", JobCleanup, t0, false),
		job("z", JobCleanup, t0.Add(-time.Minute), false),
		job("a", JobCleanup, t0, false),
		job("y", JobInitialize, t0.Add(time.Hour), false),
		job("x", JobCleanup, t0.Add(time.Hour), true),
	}
	newest, deleting := NewestJob(jobs, JobCleanup)
	if newest == nil || newest.Name != "b" || !deleting {
		t.Errorf("newest %v, deleting %v; want b (created last, the greater name of a tie), true", newest, deleting)
	}
	if newest, deleting := NewestJob(jobs[3:4], JobCleanup); newest != nil || deleting {
		t.Errorf("newest %v, deleting %v among Jobs of another kind", newest, deleting)
	}
}
