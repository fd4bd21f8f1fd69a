// Package quota is the one place where the quotas on builds are enforced:
// how many initialize at once (RUNBOAT_MAX_INITIALIZING), are started at
// once (RUNBOAT_MAX_STARTED) and are deployed (RUNBOAT_MAX_DEPLOYED). The
// counts of a set of builds are made by Count, the one definition of what
// counts against each quota, which the jobs' planners, the console's
// status and the tests use; the planners take and give back room through a
// Tracker, which refuses with an *ExceededError.
package quota

import (
	"fmt"
	"iter"

	batchv1 "k8s.io/api/batch/v1"

	"runboat.dev/shared/config"
	"runboat.dev/shared/model"
)

// Name names a quota.
type Name string

// The quotas.
const (
	// Initializing counts the builds whose init Job runs.
	Initializing Name = "initializing"
	// Started counts the builds started or starting.
	Started Name = "started"
	// Deployed counts the builds not being undeployed.
	Deployed Name = "deployed"
)

// Variable is the setting of the quota.
func (n Name) Variable() string {
	switch n {
	case Initializing:
		return config.Prefix + "MAX_INITIALIZING"
	case Started:
		return config.Prefix + "MAX_STARTED"
	case Deployed:
		return config.Prefix + "MAX_DEPLOYED"
	}
	return string(n)
}

// Limit is the limit of the quota in q.
func (n Name) Limit(q config.Quotas) int {
	switch n {
	case Initializing:
		return q.MaxInitializing
	case Started:
		return q.MaxStarted
	case Deployed:
		return q.MaxDeployed
	}
	return 0
}

// ExceededError says that a quota is, or would be, exceeded.
type ExceededError struct {
	Quota Name
	// Count is how many builds count against the quota, Limit its limit.
	Count, Limit int
}

// Error says which quota, how many builds and the limit.
func (e *ExceededError) Error() string {
	return fmt.Sprintf("%d builds %s, quota %d (%s)", e.Count, e.Quota, e.Limit, e.Quota.Variable())
}

// Tracker follows the count of one quota while a plan is made.
type Tracker struct {
	name  Name
	limit int
	count int
}

// NewTracker returns a tracker of quota name with its limit in q and the
// current count.
func NewTracker(name Name, q config.Quotas, count int) *Tracker {
	return &Tracker{name: name, limit: name.Limit(q), count: count}
}

// Take counts one more build, or refuses with an *ExceededError when the
// quota is full.
func (t *Tracker) Take() error {
	if t.count >= t.limit {
		return &ExceededError{Quota: t.name, Count: t.count, Limit: t.limit}
	}
	t.count++
	return nil
}

// Release counts one build less: a build whose count the plan ends (an
// init Job whose outcome it records, a build it stops).
func (t *Tracker) Release() {
	if t.count > 0 {
		t.count--
	}
}

// Count is the current count.
func (t *Tracker) Count() int { return t.count }

// Free is how many more builds the quota takes, 0 when it is full.
func (t *Tracker) Free() int { return max(0, t.limit-t.count) }

// Excess is how many builds are over the quota, 0 when it holds.
func (t *Tracker) Excess() int { return max(0, t.count-t.limit) }

// Err is an *ExceededError when the count is over the quota, nil otherwise.
func (t *Tracker) Err() error {
	if t.count > t.limit {
		return &ExceededError{Quota: t.name, Count: t.count, Limit: t.limit}
	}
	return nil
}

// Counts are the counts of a set of builds against each quota.
type Counts struct {
	Initializing, Started, Deployed int
}

// Count counts builds against the quotas. It is the one definition of the
// counts, which the jobs' planners enforce and the console's
// /api/v1/status shows:
//
//   - Deployed counts the builds not being undeployed (README: those being
//     deleted are not counted), where the Python runboat counts every
//     Deployment: a build being undeployed is on its way out, evicting
//     another for it would undeploy one build too many.
//   - Started counts the builds started or starting, where the Python
//     runboat counts only started ones: a build whose pod never becomes
//     ready must not hold its slot outside the quota (the stopper stops it
//     too).
//   - Initializing counts the builds whose init Job runs, as the Python
//     runboat counts init-status started. A build not being undeployed
//     counts while its init-status is started: the initializer sets it
//     before launching the Job (a run stopped between the two still holds
//     the slot, and the next pass launches the Job again) and changes it
//     when it records the outcome. A build being undeployed keeps
//     init-status started after the undeployer killed its init Job, so it
//     counts only while that Job runs: initJobs holds, for such builds
//     (NeedsInitJobs), their init Jobs as read, and InitJobRuns decides. A
//     build missing from initJobs (not read) counts, as its annotation
//     says: never launch on a guess. (Within a pass, the initializer gives
//     back the slot of each build whose outcome it records.)
//
// A Deployment that cannot be read as a build is no build: it counts for
// nothing, as the jobs leave it alone.
func Count(builds iter.Seq[model.Build], initJobs map[string][]batchv1.Job) Counts {
	var c Counts
	for b := range builds {
		if b.InitStatus == model.InitStarted {
			if jobs, read := initJobs[b.Name]; !NeedsInitJobs(b) || !read || InitJobRuns(jobs) {
				c.Initializing++
			}
		}
		if b.Status == model.StatusUndeploying {
			continue
		}
		c.Deployed++
		if b.Status == model.StatusStarted || b.Status == model.StatusStarting {
			c.Started++
		}
	}
	return c
}

// NeedsInitJobs tells whether Count needs the init Jobs of b: it is being
// undeployed and its init-status is started.
func NeedsInitJobs(b model.Build) bool {
	return b.Status == model.StatusUndeploying && b.InitStatus == model.InitStarted
}

// InitJobRuns tells whether the init Jobs of a build hold an initializing
// slot: one is being deleted (its pod may still run), or the newest one has
// neither completed nor failed.
func InitJobRuns(jobs []batchv1.Job) bool {
	newest, deleting := model.NewestJob(jobs, model.JobInitialize)
	if deleting {
		return true
	}
	if newest == nil {
		return false
	}
	phase, _ := model.JobOutcome(newest)
	return phase == model.JobRunning
}
