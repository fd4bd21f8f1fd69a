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

// Init is what was read of the initialization of a build.
type Init struct {
	// Jobs are the build's init Jobs, those being deleted included.
	Jobs []batchv1.Job
	// Pods are the pods of the build's init Jobs; read only for a build
	// whose init-status is started.
	Pods []corev1.Pod
	// Log is the build's init log ConfigMap, nil when it has none (or it
	// was not read: it is read only for a build whose init-status is
	// started).
	Log *corev1.ConfigMap
}

// Input is what the initializer plans on.
type Input struct {
	// Builds are every build, oldest first.
	Builds []*runner.Build
	// Init holds what was read of the initialization of each build whose
	// init-status is started, and the init Jobs of the builds to initialize
	// that the plan may launch (the oldest, as many as slots are free).
	Init map[string]*Init
	// Unsupported are the builds to initialize, or whose init-status is
	// started, that no repository rule matches any more.
	Unsupported map[string]bool
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

// unsupportedReason is the failure of a build no repository rule matches.
const unsupportedReason = "Unsupported: no repository rule matches the build any more"

// Plan plans a pass of the initializer, without reading or writing anything:
//
//  1. the outcome of the init Job of each build whose init-status is
//     started goes into its Deployment: succeeded (stop mode applied), or
//     failed with the reason and the end of the log kept; an init pod stuck
//     past the start timeout fails its build and its Job is deleted; a build
//     whose init Job is gone gets it again (or, when its failure was
//     recorded before the run stopped, is marked failed);
//  2. the builds to initialize (todo) that no repository rule matches any
//     more fail: waiting changes nothing;
//  3. init Jobs are launched for the oldest builds to initialize while
//     fewer than MAX_INITIALIZING init Jobs run (quota.Count). A build whose
//     init Job is there already (left by the Python runboat, or launched
//     for a build reset meanwhile) is only marked started; one whose
//     previous init Job is being deleted waits for it to go, holding its
//     slot.
func Plan(in Input, s Settings, now time.Time) runner.Plan {
	plan, slots := planOutcomes(in, s, now)
	for _, b := range in.Builds {
		if b.InitStatus == model.InitTodo && b.Status != model.StatusUndeploying && in.Unsupported[b.Name] {
			plan.Actions = append(plan.Actions, &markFailed{b: b, reason: unsupportedReason, why: "no repository rule matches it any more"})
		}
	}
	for _, b := range launchable(in) {
		st := in.Init[b.Name]
		if st == nil {
			break // not read: never launch on a guess
		}
		if err := slots.Take(); err != nil {
			break
		}
		job, deleting := model.NewestJob(st.Jobs, model.JobInitialize)
		switch {
		case deleting:
			// Its previous init Job is still going: launched at a next pass.
		case job != nil:
			plan.Actions = append(plan.Actions, &launch{b: b, slot: slots.Count(), of: s.Quotas.MaxInitializing, found: job.Name})
		default:
			plan.Actions = append(plan.Actions, &launch{b: b, slot: slots.Count(), of: s.Quotas.MaxInitializing})
		}
	}
	return plan
}

// planOutcomes plans the recording of the outcome of the init Jobs of the
// builds whose init-status is started, and returns the initializing slots
// left taken after them: quota.Count's, less the builds whose outcome the
// plan records.
func planOutcomes(in Input, s Settings, now time.Time) (runner.Plan, *quota.Tracker) {
	var plan runner.Plan
	initJobs := make(map[string][]batchv1.Job, len(in.Init))
	for name, st := range in.Init {
		initJobs[name] = st.Jobs
	}
	slots := quota.NewTracker(quota.Initializing, s.Quotas, quota.Count(runner.Models(in.Builds), initJobs).Initializing)
	record := func(a runner.Action) {
		plan.Actions = append(plan.Actions, a)
		slots.Release()
	}
	for _, b := range in.Builds {
		if b.InitStatus != model.InitStarted || b.Status == model.StatusUndeploying {
			// The undeployer kills the init Job of a build being
			// undeployed; until then it holds its slot (quota.Count).
			continue
		}
		st := in.Init[b.Name]
		if st == nil {
			continue // not read: it holds its slot, nothing is decided
		}
		live, deleting := model.NewestJob(st.Jobs, model.JobInitialize)
		if live == nil {
			switch {
			case deleting:
				// Wait for it to go.
			case st.Log != nil:
				record(&markFailed{b: b, reason: recordedReason(st.Log), why: "its failure was recorded, its init Job is gone"})
			case in.Unsupported[b.Name]:
				record(&markFailed{b: b, reason: unsupportedReason, why: "its init Job is gone and no repository rule matches it any more"})
			default:
				plan.Actions = append(plan.Actions, &launch{b: b, again: true})
			}
			continue
		}
		o := outcomeOf(live, st.Pods, now, s.StartTimeout)
		switch o.kind {
		case model.JobRunning:
			if !o.deadline.IsZero() && (plan.Wake.IsZero() || o.deadline.Before(plan.Wake)) {
				plan.Wake = o.deadline
			}
		case model.JobSucceeded:
			record(&markSucceeded{b: b})
		case model.JobFailed:
			f := &markFailed{b: b, reason: o.reason, why: "its init Job failed", keepLog: st.Log == nil, pods: podsOf(live, st.Pods), logs: s.Logs}
			if o.failFast {
				f.why, f.kill = "its init pod never started, the Job is deleted", live
			}
			record(f)
		}
	}
	return plan, slots
}

// launchable returns the builds to initialize that a launch may be
// planned for, oldest first: not being undeployed, and matched by a
// repository rule.
func launchable(in Input) []*runner.Build {
	var out []*runner.Build
	for _, b := range in.Builds {
		if b.InitStatus == model.InitTodo && b.Status != model.StatusUndeploying && !in.Unsupported[b.Name] {
			out = append(out, b)
		}
	}
	return out
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

// outcome is what became of an init Job.
type outcome struct {
	kind   model.JobPhase
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
	switch phase, reason := model.JobOutcome(job); phase {
	case model.JobFailed:
		return outcome{kind: model.JobFailed, reason: failureReason(reason, podsOf(job, pods))}
	case model.JobSucceeded:
		return outcome{kind: model.JobSucceeded}
	}
	o := outcome{kind: model.JobRunning}
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
		return outcome{kind: model.JobFailed, reason: text, failFast: true}
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

// failureReason describes a failed Job: the reason of its condition
// (model.JobOutcome), and how the containers of its last failed pod ended.
func failureReason(condition string, pods []corev1.Pod) string {
	parts := []string{condition}
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
	return strings.Join(parts, "; ")
}

// recordedReason is the failure reason kept in an init log ConfigMap.
func recordedReason(cm *corev1.ConfigMap) string {
	if r := cm.Data[model.InitLogReasonKey]; r != "" {
		return r
	}
	return "init failed (reason not recorded)"
}
