// Package quota is the one place where the quotas on builds are enforced:
// how many initialize at once (RUNBOAT_MAX_INITIALIZING), are started at
// once (RUNBOAT_MAX_STARTED) and are deployed (RUNBOAT_MAX_DEPLOYED). The
// jobs' planners take and give back room through a Tracker, which refuses
// with an *ExceededError; Check tells whether counts hold.
package quota

import (
	"errors"
	"fmt"

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

// Release counts one build less.
func (t *Tracker) Release() {
	if t.count > 0 {
		t.count--
	}
}

// Count is the current count.
func (t *Tracker) Count() int { return t.count }

// Excess is how many builds are over the quota, 0 when it holds.
func (t *Tracker) Excess() int { return max(0, t.count-t.limit) }

// Err is an *ExceededError when the count is over the quota, nil otherwise.
func (t *Tracker) Err() error {
	if t.count > t.limit {
		return &ExceededError{Quota: t.name, Count: t.count, Limit: t.limit}
	}
	return nil
}

// Counts are the counts of builds against each quota.
type Counts struct {
	Initializing, Started, Deployed int
}

// Count counts builds as read from their Deployments: initializing, those
// whose init-status is started; started, those started or starting; deployed,
// those not being undeployed. Builds being undeployed count for nothing.
func Count(builds []model.Build) Counts {
	var c Counts
	for _, b := range builds {
		if b.Status == model.StatusUndeploying {
			continue
		}
		c.Deployed++
		if b.InitStatus == model.InitStarted {
			c.Initializing++
		}
		if b.Status == model.StatusStarted || b.Status == model.StatusStarting {
			c.Started++
		}
	}
	return c
}

// Check returns the *ExceededError of every quota that counts exceed,
// joined, or nil when they all hold.
func Check(q config.Quotas, c Counts) error {
	var errs []error
	for _, x := range []struct {
		name  Name
		count int
	}{{Initializing, c.Initializing}, {Started, c.Started}, {Deployed, c.Deployed}} {
		if err := NewTracker(x.name, q, x.count).Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
