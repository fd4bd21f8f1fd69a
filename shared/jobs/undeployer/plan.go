package undeployer

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	"runboat.dev/shared/quota"
)

// maxBackoff caps the wait between two cleanup attempts.
const maxBackoff = time.Hour

// Object is a resource labelled with a build, as listed for the search of
// orphans.
type Object struct {
	Resource schema.GroupVersionResource
	metav1.PartialObjectMetadata
}

// Input is what the undeployer plans on.
type Input struct {
	// Builds are every build, oldest first.
	Builds []*runner.Build
	// Jobs are the Jobs of the builds being undeployed, by build name.
	Jobs map[string][]batchv1.Job
	// Unsupported are the builds being undeployed that no repository rule
	// matches any more: no cleanup Job can be rendered for them.
	Unsupported map[string]bool
	// Objects are the resources labelled with a build, of the types the
	// undeployer deletes; nil when not read.
	Objects []Object
}

// Settings are the settings the plan follows.
type Settings struct {
	Quotas  config.Quotas
	Cleanup config.Cleanup
	Jobs    config.Jobs
}

// Plan plans a pass of the undeployer, without reading or writing anything:
//
//  1. for each build being undeployed: its init Job is killed, it is scaled
//     to 0 and its cleanup Job is run; when that succeeds its resources are
//     deleted and its finalizer removed; when it fails, it is run again
//     after a backoff, up to RUNBOAT_CLEANUP_ATTEMPTS times, then the build
//     is left marked with the reason. A build no repository rule matches
//     any more, for which no cleanup Job can ever run, is left marked at
//     once. With RUNBOAT_NO_CLEANUP_JOB its resources are deleted at once.
//  2. while more than MAX_DEPLOYED builds are deployed (not counting those
//     being undeployed), the least recently scaled stopped or failed builds
//     are undeployed, never the newest build of a branch (the builds of a
//     pull request are all candidates), as the Python runboat does.
//  3. the resources labelled with a build that has no Deployment, older
//     than RUNBOAT_ORPHAN_GRACE_PERIOD, are deleted.
func Plan(in Input, s Settings, now time.Time) runner.Plan {
	var plan runner.Plan
	wakeAt := func(t time.Time) {
		if !t.IsZero() && (plan.Wake.IsZero() || t.Before(plan.Wake)) {
			plan.Wake = t
		}
	}
	for _, b := range in.Builds {
		if b.Status != model.StatusUndeploying || !slices.Contains(b.Deployment.Finalizers, model.Finalizer) {
			continue
		}
		if a, wake := planCleanup(b, in.Jobs[b.Name], in.Unsupported[b.Name], s, now); a != nil {
			plan.Actions = append(plan.Actions, a)
		} else {
			wakeAt(wake)
		}
	}
	plan.Actions = append(plan.Actions, planEvictions(in.Builds, s.Quotas)...)
	plan.Actions = append(plan.Actions, planOrphans(in, s.Jobs.OrphanGracePeriod, now)...)
	return plan
}

// planCleanup plans the next step of the undeploying of b, or returns when
// to look again.
func planCleanup(b *runner.Build, jobs []batchv1.Job, unsupported bool, s Settings, now time.Time) (runner.Action, time.Time) {
	if s.Cleanup.NoCleanupJob {
		return &finish{b: b, why: "no cleanup Job (RUNBOAT_NO_CLEANUP_JOB)"}, time.Time{}
	}
	initRunning := slices.ContainsFunc(jobs, func(j batchv1.Job) bool {
		return model.JobKind(j.Labels[model.LabelJobKind]) == model.JobInitialize && j.DeletionTimestamp == nil
	})
	cleanup, deleting := model.NewestJob(jobs, model.JobCleanup)
	attempts := attemptsOf(b)
	if cleanup == nil {
		switch {
		case deleting:
			return nil, time.Time{} // the failed one is going
		case attempts >= s.Jobs.CleanupAttempts:
			return nil, time.Time{} // given up: marked already
		}
		if after := retryAfter(b); now.Before(after) {
			return nil, after
		}
		a := &startCleanup{b: b, attempt: attempts + 1, of: s.Jobs.CleanupAttempts, killInit: initRunning}
		if unsupported {
			// No cleanup Job can ever run: give up at once, for a person
			// to look at.
			a.abandon = &recordCleanupFailure{b: b, attempt: a.of, of: a.of, reason: "Unsupported: no repository rule matches the build any more"}
		}
		return a, time.Time{}
	}
	switch kind, reason := model.JobOutcome(cleanup); kind {
	case model.JobSucceeded:
		return &finish{b: b, why: "cleanup Job succeeded"}, time.Time{}
	case model.JobFailed:
		attempt := attemptOf(cleanup, attempts+1)
		if attempt <= attempts && b.Deployment.Annotations[model.AnnotationCleanupFailure] != "" && attempt >= s.Jobs.CleanupAttempts {
			return nil, time.Time{} // given up, recorded
		}
		return &recordCleanupFailure{
			b: b, attempt: attempt, of: s.Jobs.CleanupAttempts, reason: reason, job: cleanup,
			retryAfter: now.Add(backoff(s.Jobs.CleanupBackoff, attempt)),
		}, time.Time{}
	default:
		if initRunning || b.DesiredReplicas != 0 {
			// A run stopped half-way through starting the cleanup.
			return &startCleanup{b: b, attempt: attemptOf(cleanup, attempts+1), of: s.Jobs.CleanupAttempts, killInit: initRunning, running: true}, time.Time{}
		}
		return nil, time.Time{}
	}
}

// attemptsOf is the count of failed cleanup attempts of b.
func attemptsOf(b *runner.Build) int {
	n, err := strconv.Atoi(b.Deployment.Annotations[model.AnnotationCleanupAttempts])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// attemptOf is the attempt number of a cleanup Job, def when it has none.
func attemptOf(j *batchv1.Job, def int) int {
	n, err := strconv.Atoi(j.Annotations[model.AnnotationAttempt])
	if err != nil || n < 1 {
		return def
	}
	return n
}

// retryAfter is when the next cleanup attempt of b may start.
func retryAfter(b *runner.Build) time.Time {
	t, err := model.ParseTime(b.Deployment.Annotations[model.AnnotationCleanupRetryAfter])
	if err != nil {
		return time.Time{}
	}
	return t
}

// backoff is the wait after the failure of attempt (from 1): base, doubled
// for each further attempt, capped.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// planEvictions undeploys the least recently scaled stopped or failed
// builds while more than MAX_DEPLOYED are deployed, keeping the newest build
// of each branch.
func planEvictions(builds []*runner.Build, q config.Quotas) []runner.Action {
	type branch struct{ repo, name string }
	newest := map[branch]*runner.Build{}
	for _, b := range builds {
		if b.Status == model.StatusUndeploying || b.Ref.PR != 0 {
			continue
		}
		k := branch{b.Ref.Repo, b.Ref.TargetBranch}
		if cur := newest[k]; cur == nil || b.Created.After(cur.Created) || (b.Created.Equal(cur.Created) && b.Name > cur.Name) {
			newest[k] = b
		}
	}
	tracker := quota.NewTracker(quota.Deployed, q, quota.Count(runner.Models(builds), nil).Deployed)
	excess := tracker.Excess()
	if excess == 0 {
		return nil
	}
	why := tracker.Err().Error()
	var candidates []*runner.Build
	for _, b := range builds {
		switch b.Status {
		case model.StatusStopped, model.StatusStopping, model.StatusFailed:
		default:
			continue
		}
		if b.Ref.PR == 0 && newest[branch{b.Ref.Repo, b.Ref.TargetBranch}] == b {
			continue
		}
		candidates = append(candidates, b)
	}
	slices.SortStableFunc(candidates, func(a, b *runner.Build) int {
		return cmp.Or(a.LastScaled.Compare(b.LastScaled), a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
	})
	var out []runner.Action
	for _, b := range candidates[:min(excess, len(candidates))] {
		out = append(out, &evict{b: b, why: why + ": least recently used " + string(b.Status) + " build"})
	}
	return out
}

// planOrphans deletes the resources of builds that have no Deployment, once
// older than the grace period.
func planOrphans(in Input, grace time.Duration, now time.Time) []runner.Action {
	exists := map[string]bool{}
	for _, b := range in.Builds {
		exists[b.Name] = true
	}
	byBuild := map[string][]Object{}
	var names []string
	for _, o := range in.Objects {
		name := o.Labels[model.LabelBuild]
		if name == "" || exists[name] || o.DeletionTimestamp != nil || now.Sub(o.CreationTimestamp.Time) < grace {
			continue
		}
		if _, seen := byBuild[name]; !seen {
			names = append(names, name)
		}
		byBuild[name] = append(byBuild[name], o)
	}
	slices.Sort(names)
	out := make([]runner.Action, 0, len(names))
	for _, name := range names {
		out = append(out, &deleteOrphans{build: name, objects: byBuild[name], grace: grace})
	}
	return out
}

// describe names a build in an action's description.
func describe(b *runner.Build) string {
	what := "branch " + b.Ref.TargetBranch
	if b.Ref.PR != 0 {
		what = fmt.Sprintf("PR %d", b.Ref.PR)
	}
	return fmt.Sprintf("build %s (%s %s %.12s, %s)", b.Name, b.Ref.Repo, what, b.Ref.Commit, b.Status)
}
