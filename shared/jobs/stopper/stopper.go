// Package stopper is the stopper job: while more than RUNBOAT_MAX_STARTED
// builds are started or starting, it stops the least recently scaled ones;
// with RUNBOAT_MAX_STARTED_AGE, it also stops the builds started longer ago
// than that.
package stopper

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	"runboat.dev/shared/quota"
)

// Name is the job's name.
const Name = "stopper"

// Job is the stopper.
type Job struct{}

var _ runner.Job = Job{}

// Name implements runner.Job.
func (Job) Name() string { return Name }

// Plan implements runner.Job.
func (Job) Plan(_ context.Context, env *runner.Env, builds *runner.Builds) (runner.Plan, error) {
	return Plan(builds.All, Settings{Quotas: env.Config.Quotas, MaxStartedAge: env.Config.MaxStartedAge}, env.Clock.Now()), nil
}

// Settings are the settings the plan follows.
type Settings struct {
	Quotas config.Quotas
	// MaxStartedAge stops the builds started longer ago; 0 never does.
	MaxStartedAge time.Duration
}

// Plan plans a pass of the stopper, without reading or writing anything: the
// builds started (or starting) longer ago than MaxStartedAge are stopped,
// then, while more than MAX_STARTED remain, the least recently scaled.
func Plan(builds []*runner.Build, s Settings, now time.Time) runner.Plan {
	var (
		plan   runner.Plan
		active []*runner.Build
	)
	started := quota.NewTracker(quota.Started, s.Quotas, quota.Count(runner.Models(builds), nil).Started)
	for _, b := range builds {
		if b.Status != model.StatusStarted && b.Status != model.StatusStarting {
			continue
		}
		if s.MaxStartedAge > 0 {
			end := b.LastScaled.Add(s.MaxStartedAge)
			if !now.Before(end) {
				plan.Actions = append(plan.Actions, &stop{b: b, why: fmt.Sprintf("started for more than %s (RUNBOAT_MAX_STARTED_AGE)", s.MaxStartedAge)})
				started.Release()
				continue
			}
			if plan.Wake.IsZero() || end.Before(plan.Wake) {
				plan.Wake = end
			}
		}
		active = append(active, b)
	}
	excess := started.Excess()
	if excess == 0 {
		return plan
	}
	why := started.Err().Error()
	slices.SortStableFunc(active, func(a, b *runner.Build) int {
		return cmp.Or(a.LastScaled.Compare(b.LastScaled), a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
	})
	for _, b := range active[:excess] {
		plan.Actions = append(plan.Actions, &stop{b: b, why: why + ": least recently started"})
	}
	return plan
}

// stop stops a build (ops.Stop).
type stop struct {
	b   *runner.Build
	why string
}

func (a *stop) String() string {
	return fmt.Sprintf("stop build %s (%s, last scaled %s): %s", a.b.Name, a.b.Status, model.FormatTime(a.b.LastScaled), a.why)
}

func (a *stop) Apply(ctx context.Context, env *runner.Env) error {
	_, err := env.Ops.Stop(ctx, a.b.Deployment, a.why)
	return err
}
