package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"runboat.dev/shared/lease"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/ops"
)

// Action is one step of a plan.
type Action interface {
	// String describes the action in one line, for the log and the output
	// of a dry run.
	String() string
	// Apply performs the action. An error wrapping ops.ErrConflict means a
	// build changed since it was read: the pass reads again and plans again.
	Apply(ctx context.Context, env *Env) error
}

// Plan is what a pass does.
type Plan struct {
	// Actions are applied in order.
	Actions []Action
	// Wake is when to look again even if nothing changes (the earliest
	// deadline the plan waits for); zero for none.
	Wake time.Time
}

// Job is a kind of job: the initializer, the stopper or the undeployer.
type Job interface {
	// Name names the job: its Lease is runboat-<name>, its Events come from
	// runboat.dev/<name>.
	Name() string
	// Plan reads what the job needs beyond the builds, and plans.
	Plan(ctx context.Context, env *Env, builds *Builds) (Plan, error)
}

// Options tune a run.
type Options struct {
	// DryRun prints the plan of one pass to Env.Out and writes nothing (it
	// does not take the Lease either).
	DryRun bool
	// Linger keeps the run going after its first pass, reacting to changes
	// of the builds and of their Jobs, until that long after the start.
	Linger time.Duration
	// Only makes each pass read only the builds that one of these selects
	// (each narrower than BuildSelector), for a job whose plan needs no
	// other: the function's initializer pass reads the builds to
	// initialize and initializing, not every build. Nil reads every build.
	Only []labels.Selector
}

// maxRounds bounds the reads and plans of one pass when builds keep
// changing under it.
const maxRounds = 4

// resync is the longest a lingering run waits without a pass, for the
// decisions that depend on time.
const resync = 30 * time.Second

// debounce gathers the changes that come together into one pass.
const debounce = 300 * time.Millisecond

// releaseTimeout bounds the release of the Lease at the end of a run, made
// with a fresh context so that a run stopped by a signal releases it too.
const releaseTimeout = 5 * time.Second

// LeaseName is the name of the Lease of a job.
func LeaseName(job Job) string { return "runboat-" + job.Name() }

// Run runs job: it takes the job's Lease (a run that finds it held by
// another exits without error, saying so), makes one pass, and with Linger
// more passes as builds change, then releases the Lease. It returns an error
// when its last pass could not do its work (earlier failed passes of a
// lingering run are logged: the next one did their work), or when it lost
// the Lease.
func Run(ctx context.Context, env *Env, job Job, opts Options) error {
	log := logging.From(ctx).With().Str("job", job.Name()).Logger()
	ctx = logging.Into(ctx, log)
	if opts.DryRun {
		_, err := pass(ctx, env, job, true, opts.Only)
		return err
	}
	start := env.Clock.Now()
	l, err := lease.Acquire(ctx, env.Client, env.Namespace(), LeaseName(job), env.Identity, env.LeaseDuration, env.Clock)
	if errors.Is(err, lease.ErrHeld) {
		// A lingering run reacts to what brought this one by its watch; a
		// run killed without releasing the Lease blocks the next ones until
		// it expires, at most env.LeaseDuration, unless its process is
		// known to have ended (lease.Acquire takes the Lease at once).
		log.Info().Err(err).Msg("another run is under way: nothing to do (a lingering run reacts to the change by its watch)")
		return nil
	}
	if err != nil {
		return err
	}
	if l.TakenOver != "" {
		log.Info().Str("lease", LeaseName(job)).Msg("lease taken over " + l.TakenOver)
	}
	kctx, stop := l.Keep(ctx)
	defer func() {
		stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := l.Release(rctx); err != nil {
			log.Warn().Err(err).Msg("lease not released: the next run waits for it to expire")
		}
	}()
	// failed is the error of the last pass: a lingering run whose pass
	// failed (the API server restarting, say) and whose next pass did the
	// work left the builds as they should be, and ends well; the failure is
	// logged.
	var failed error
	deadline := start.Add(opts.Linger)
	for {
		res, err := pass(kctx, env, job, false, opts.Only)
		if err != nil {
			if kctx.Err() != nil {
				return fmt.Errorf("failed to finish the %s pass: %w", job.Name(), context.Cause(kctx))
			}
			log.Error().Err(err).Msg("pass failed")
		}
		failed = err
		if !env.Clock.Now().Before(deadline) {
			break
		}
		until := deadline
		if !res.Wake.IsZero() && res.Wake.Before(until) {
			until = res.Wake
		}
		if now := env.Clock.Now(); until.After(now.Add(resync)) {
			until = now.Add(resync)
		}
		if err := waitForChange(kctx, env, res.ResourceVersion, until); err != nil {
			if errors.Is(context.Cause(kctx), lease.ErrLost) {
				return fmt.Errorf("failed to linger: %w", err)
			}
			// Stopped while idle: the work done stands.
			log.Info().Err(err).Msg("stopped while lingering")
			break
		}
		if !env.Clock.Now().Before(deadline) {
			break
		}
	}
	errs := []error{failed}
	if cause := context.Cause(kctx); errors.Is(cause, lease.ErrLost) {
		// The passes ended, but the run may have acted without the Lease.
		errs = append(errs, fmt.Errorf("failed to keep the %s lease to the end: %w", job.Name(), cause))
	}
	return errors.Join(errs...)
}

// RunOnce makes one pass of job under its Lease, and returns without error,
// doing nothing, when another run holds the Lease. The webhook function
// calls the initializer's so that a new build's init Job starts at once when
// a slot is free.
func RunOnce(ctx context.Context, env *Env, job Job) error {
	return Run(ctx, env, job, Options{})
}

// Result is what a pass leaves for the next one.
type Result struct {
	// ResourceVersion is the version of the last read of the builds.
	ResourceVersion string
	// Wake is the Wake of the last plan.
	Wake time.Time
	// Applied counts the actions applied.
	Applied int
}

// Pass reads the builds, adopts those of the Python runboat, plans and
// applies the plan, reading and planning again when a build changed under
// it. With dryRun it prints the plan to env.Out and writes nothing.
func Pass(ctx context.Context, env *Env, job Job, dryRun bool) (Result, error) {
	return pass(ctx, env, job, dryRun, nil)
}

func pass(ctx context.Context, env *Env, job Job, dryRun bool, only []labels.Selector) (Result, error) {
	log := logging.From(ctx)
	var res Result
	var lastConflict error
	for round := range maxRounds {
		builds, err := ReadBuilds(ctx, env, only...)
		if err != nil {
			return res, err
		}
		res.ResourceVersion = builds.ResourceVersion
		var adoptions []Action
		if only == nil {
			// A pass that reads some builds leaves adoption to those that
			// read all: a namespace taken over holds thousands to adopt.
			adoptions = adoptActions(ctx, builds)
		}
		if !dryRun {
			conflict, err := applyAll(ctx, env, adoptions, &res)
			if err != nil {
				return res, err
			}
			if conflict != nil {
				lastConflict = conflict
				continue
			}
		}
		plan, err := job.Plan(ctx, env, builds)
		if err != nil {
			return res, fmt.Errorf("failed to plan: %w", err)
		}
		res.Wake = plan.Wake
		log.Info().Int("builds", len(builds.All)).Int("actions", len(plan.Actions)).Int("round", round+1).Msg("plan made")
		if dryRun {
			for _, a := range append(adoptions, plan.Actions...) {
				fmt.Fprintf(env.Out, "%s: %s\n", job.Name(), a)
			}
			return res, nil
		}
		conflict, err := applyAll(ctx, env, plan.Actions, &res)
		if conflict == nil {
			return res, err
		}
		lastConflict = conflict
		log.Info().Err(conflict).Msg("a build changed under the plan: reading the builds again")
	}
	return res, fmt.Errorf("failed to apply a plan: builds changed under %d plans in a row: %w", maxRounds, lastConflict)
}

// applyAll applies actions in order. It stops at the first conflict, which
// it returns apart; other errors are logged and joined, the other actions
// still applied.
func applyAll(ctx context.Context, env *Env, actions []Action, res *Result) (conflict, err error) {
	log := logging.From(ctx)
	var errs []error
	for _, a := range actions {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("failed to apply the plan: %w", context.Cause(ctx))
		}
		log.Debug().Str("action", a.String()).Msg("applying")
		err := a.Apply(ctx, env)
		switch {
		case errors.Is(err, ops.ErrConflict):
			return err, errors.Join(errs...)
		case err != nil:
			log.Error().Err(err).Str("action", a.String()).Msg("action failed")
			errs = append(errs, fmt.Errorf("failed to %s: %w", a, err))
		default:
			res.Applied++
		}
	}
	return nil, errors.Join(errs...)
}

// adoptActions are the adoptions of the Python runboat's builds.
func adoptActions(ctx context.Context, builds *Builds) []Action {
	var out []Action
	for _, b := range builds.All {
		p, err := ops.AdoptPatch(b.Deployment)
		if err != nil {
			logging.From(ctx).Warn().Err(err).Str("build", b.Name).Msg("cannot adopt build")
			continue
		}
		if !p.Empty() {
			out = append(out, &adopt{builds: builds, b: b})
		}
	}
	return out
}

// adopt labels a build of the Python runboat (ops.Adopt).
type adopt struct {
	builds *Builds
	b      *Build
}

func (a *adopt) String() string {
	return fmt.Sprintf("adopt build %s: set the labels runboat/commit, runboat/target, runboat/repo-key and runboat/init-status", a.b.Name)
}

func (a *adopt) Apply(ctx context.Context, env *Env) error {
	d, err := env.Ops.Adopt(ctx, a.b.Deployment)
	if err != nil {
		return err
	}
	return a.builds.Replace(d)
}

// waitForChange waits until a build's Deployment or a Job of a build changes
// after resourceVersion, or until until. A watch that cannot start or ends
// early counts as a change: the next pass reads everything again.
func waitForChange(ctx context.Context, env *Env, resourceVersion string, until time.Time) error {
	wait := until.Sub(env.Clock.Now())
	if wait <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	opts := BuildWatchOptions(resourceVersion, wait)
	var watchers []watch.Interface
	defer func() {
		for _, w := range watchers {
			w.Stop()
		}
	}()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	start := []func() (watch.Interface, error){
		func() (watch.Interface, error) {
			return env.Client.AppsV1().Deployments(env.Namespace()).Watch(wctx, opts)
		},
		func() (watch.Interface, error) {
			return env.Client.BatchV1().Jobs(env.Namespace()).Watch(wctx, opts)
		},
	}
	for _, s := range start {
		w, err := s()
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			// Not at once: a run cut off from the API server would
			// otherwise spin through failing passes.
			logging.From(ctx).Debug().Err(err).Msg("watch not started: reading again")
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-env.Clock.After(debounce):
			}
			return nil
		}
		watchers = append(watchers, w)
		go func() {
			for range w.ResultChan() {
				notify()
			}
			notify()
		}()
	}
	select {
	case <-wctx.Done():
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	case <-changed:
	}
	// Let the changes that come together arrive.
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-env.Clock.After(debounce):
	}
	return nil
}
