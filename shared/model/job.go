package model

import (
	"cmp"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// JobPhase is where an init or cleanup Job of a build is, as its conditions
// say.
type JobPhase int

// The phases of a Job.
const (
	// JobRunning: neither completed nor failed yet.
	JobRunning JobPhase = iota
	// JobSucceeded: the Complete condition is true.
	JobSucceeded
	// JobFailed: the Failed condition is true.
	JobFailed
)

// JobOutcome reads the phase of a Job from its conditions: the first of
// Complete and Failed that is true decides. For a failed Job it also
// returns the reason: the condition's reason ("Failed" when it has none),
// then its message.
func JobOutcome(j *batchv1.Job) (JobPhase, string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return JobSucceeded, ""
		case batchv1.JobFailed:
			reason := cmp.Or(c.Reason, "Failed")
			if c.Message != "" {
				reason += ": " + c.Message
			}
			return JobFailed, reason
		}
	}
	return JobRunning, ""
}

// NewestJob returns the newest Job of kind among jobs that is not being
// deleted, nil when there is none: the one created last, and of two created
// in the same second (creation times have a resolution of one second) the
// one whose name sorts last, so that the choice never depends on the order
// of a list. deleting tells whether a Job of kind is being deleted.
func NewestJob(jobs []batchv1.Job, kind JobKind) (newest *batchv1.Job, deleting bool) {
	for i := range jobs {
		j := &jobs[i]
		if JobKind(j.Labels[LabelJobKind]) != kind {
			continue
		}
		if j.DeletionTimestamp != nil {
			deleting = true
			continue
		}
		if newest == nil || cmp.Or(j.CreationTimestamp.Compare(newest.CreationTimestamp.Time), cmp.Compare(j.Name, newest.Name)) > 0 {
			newest = j
		}
	}
	return newest, deleting
}
