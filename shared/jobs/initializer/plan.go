package initializer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	"runboat.dev/shared/quota"
)

// stuckReasons are the reasons a container waits on that do not go away by
// themselves: an init pod waiting on one of them past the start timeout
// fails its build.
var stuckReasons = map[string]bool{
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
}

// Init is what was read of the initialization of a build whose init-status
// is started.
type Init struct {
	// Jobs are the build's init Jobs, those being deleted included.
	Jobs []batchv1.Job
	// Pods are the pods of the build's init Jobs.
	Pods []corev1.Pod
	// Log is the build's init log ConfigMap, nil when it has none (or it
	// was not read: it is read only for a build whose init Job failed or is
	// gone).
	Log *corev1.ConfigMap
}

// Input is what the initializer plans on.
type Input struct {
	// Builds are every build, oldest first.
	Builds []*runner.Build
	// Init holds, for each build whose init-status is started, what was
	// read of its initialization.
	Init map[string]*Init
}

// Settings are the settings the plan follows.
type Settings struct {
	Quotas config.Quotas
	// StartTimeout is how long an init pod may stay unschedulable or
	// waiting on an error before its build fails (RUNBOAT_INIT_START_TIMEOUT).
	StartTimeout time.Duration
	// Logs reads the logs of failed init pods.
	Logs LogReader
}

// Plan plans a pass of the initializer, without reading or writing anything:
//
//  1. the outcome of the init Job of each build whose init-status is
//     started goes into its Deployment: succeeded (stop mode applied), or
//     failed with the reason and the end of the log kept; an init pod stuck
//     past the start timeout fails its build and its Job is deleted; a build
//     whose init Job is gone gets it again (or, when its failure was
//     recorded before the run stopped, is marked failed);
//  2. init Jobs are launched for the oldest builds to initialize (todo)
//     while fewer than MAX_INITIALIZING init Jobs run.
func Plan(in Input, s Settings, now time.Time) runner.Plan {
	var (
		plan    runner.Plan
		running int
	)
	wakeAt := func(t time.Time) {
		if !t.IsZero() && (plan.Wake.IsZero() || t.Before(plan.Wake)) {
			plan.Wake = t
		}
	}
	for _, b := range in.Builds {
		if b.InitStatus != model.InitStarted {
			continue
		}
		st := in.Init[b.Name]
		if st == nil {
			// Not read: count it, decide nothing.
			running++
			continue
		}
		live, deleting := splitJobs(st.Jobs)
		if b.Status == model.StatusUndeploying {
			// The undeployer kills its init Job; until then it runs.
			if len(deleting) > 0 || (live != nil && outcomeOf(live, nil, now, s.StartTimeout).kind == jobRunning) {
				running++
			}
			continue
		}
		if live == nil {
			switch {
			case len(deleting) > 0:
				running++ // wait for it to go
			case st.Log != nil:
				plan.Actions = append(plan.Actions, &markFailed{b: b, reason: recordedReason(st.Log), recorded: true})
			default:
				running++
				plan.Actions = append(plan.Actions, &relaunch{b: b})
			}
			continue
		}
		o := outcomeOf(live, st.Pods, now, s.StartTimeout)
		switch o.kind {
		case jobRunning:
			running++
			wakeAt(o.deadline)
		case jobSucceeded:
			plan.Actions = append(plan.Actions, &markSucceeded{b: b})
		case jobFailed:
			plan.Actions = append(plan.Actions, &markFailed{
				b: b, reason: o.reason, failFast: o.failFast, job: live,
				pods: podsOf(live, st.Pods), logs: s.Logs, recorded: st.Log != nil,
			})
		}
	}
	slots := quota.NewTracker(quota.Initializing, s.Quotas, running)
	for _, b := range in.Builds {
		if b.InitStatus != model.InitTodo || b.Status == model.StatusUndeploying {
			continue
		}
		if err := slots.Take(); err != nil {
			break
		}
		plan.Actions = append(plan.Actions, &launch{b: b, slot: slots.Count(), of: s.Quotas.MaxInitializing})
	}
	return plan
}

// splitJobs returns the newest init Job not being deleted, and the Jobs
// being deleted.
func splitJobs(jobs []batchv1.Job) (live *batchv1.Job, deleting []batchv1.Job) {
	for i := range jobs {
		j := &jobs[i]
		if j.DeletionTimestamp != nil {
			deleting = append(deleting, *j)
			continue
		}
		if live == nil || j.CreationTimestamp.After(live.CreationTimestamp.Time) ||
			(j.CreationTimestamp.Equal(&live.CreationTimestamp) && j.Name > live.Name) {
			live = j
		}
	}
	return live, deleting
}

// podsOf returns the pods of job.
func podsOf(job *batchv1.Job, pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if ownedBy(p, job.UID) {
			out = append(out, p)
		}
	}
	return out
}

func ownedBy(p corev1.Pod, uid types.UID) bool {
	for _, r := range p.OwnerReferences {
		if r.UID == uid {
			return true
		}
	}
	return false
}

type jobKind int

const (
	jobRunning jobKind = iota
	jobSucceeded
	jobFailed
)

// outcome is what became of an init Job.
type outcome struct {
	kind   jobKind
	reason string
	// failFast is set when the Job failed because a pod never started: the
	// Job must be deleted.
	failFast bool
	// deadline is when a pod now waiting on an error will have waited too
	// long.
	deadline time.Time
}

// outcomeOf reads the outcome of an init Job from its conditions and, while
// it runs, from its pods: one stuck past the start timeout fails it.
func outcomeOf(job *batchv1.Job, pods []corev1.Pod, now time.Time, timeout time.Duration) outcome {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobFailed:
			return outcome{kind: jobFailed, reason: failureReason(c, podsOf(job, pods))}
		case batchv1.JobComplete:
			return outcome{kind: jobSucceeded}
		}
	}
	o := outcome{kind: jobRunning}
	for _, p := range podsOf(job, pods) {
		reason, message := stuck(p)
		if reason == "" {
			continue
		}
		deadline := p.CreationTimestamp.Add(timeout)
		if now.Before(deadline) {
			if o.deadline.IsZero() || deadline.Before(o.deadline) {
				o.deadline = deadline
			}
			continue
		}
		text := fmt.Sprintf("%s: init pod %s not started after %s", reason, p.Name, timeout)
		if message != "" {
			text += ": " + message
		}
		return outcome{kind: jobFailed, reason: text, failFast: true}
	}
	return o
}

// stuck returns why a pod cannot start by itself, if it cannot: it is
// unschedulable, or one of its containers waits on an error.
func stuck(p corev1.Pod) (reason, message string) {
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return "", ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Reason, c.Message
		}
	}
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && stuckReasons[w.Reason] {
			return w.Reason, fmt.Sprintf("container %s: %s", cs.Name, w.Message)
		}
	}
	return "", ""
}

// failureReason describes a failed Job: its condition's reason and message,
// and how the containers of its last failed pod ended.
func failureReason(c batchv1.JobCondition, pods []corev1.Pod) string {
	parts := []string{c.Reason}
	if c.Message != "" {
		parts[0] += ": " + c.Message
	}
	var failed []corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodFailed {
			failed = append(failed, p)
		}
	}
	if len(failed) > 0 {
		last := slices.MaxFunc(failed, func(a, b corev1.Pod) int {
			return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
		})
		for _, cs := range append(slices.Clone(last.Status.InitContainerStatuses), last.Status.ContainerStatuses...) {
			t := cs.State.Terminated
			if t == nil {
				t = cs.LastTerminationState.Terminated
			}
			if t == nil || (t.ExitCode == 0 && t.Reason != "OOMKilled") {
				continue
			}
			parts = append(parts, fmt.Sprintf("container %s: %s, exit code %d", cs.Name, t.Reason, t.ExitCode))
		}
		if last.Status.Reason != "" {
			parts = append(parts, fmt.Sprintf("pod %s: %s", last.Status.Reason, last.Status.Message))
		}
	}
	if parts[0] == "" {
		parts[0] = "Failed"
	}
	return strings.Join(parts, "; ")
}

// recordedReason is the failure reason kept in an init log ConfigMap.
func recordedReason(cm *corev1.ConfigMap) string {
	if r := cm.Data[model.InitLogReasonKey]; r != "" {
		return r
	}
	return "init failed (reason not recorded)"
}
