package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
)

// pendingDescription is the description of the pending status of a build
// the reconciler deploys, as the webhook's.
const pendingDescription = "build queued"

// outcome is what the actions of a pass share: whether one failed, so that
// the cache of the conditional requests is not saved and the next run reads
// again what this one could not act on.
type outcome struct {
	failed bool
}

// undeploy undeploys a build (ops.Undeploy: its Deployment is deleted, the
// undeployer runs its cleanup), with an Event saying why.
type undeploy struct {
	b   *runner.Build
	why string
	out *outcome
}

func (a *undeploy) String() string {
	return fmt.Sprintf("undeploy build %s (%s %s): %s", a.b.Name, a.b.Ref.Repo, target(a.b.Ref), a.why)
}

func (a *undeploy) Apply(ctx context.Context, env *runner.Env) error {
	_, err := env.Ops.Undeploy(logging.WithBuild(ctx, a.b.Ref, a.b.Name), a.b.Deployment, a.why)
	a.out.fail(err)
	return err
}

// deployHead deploys the build of a head commit with the webhook's deployer,
// and posts its pending status when it made it.
type deployHead struct {
	ref      model.Ref
	why      string
	deployer *deploy.Deployer
	out      *outcome
}

func (a *deployHead) String() string {
	return fmt.Sprintf("deploy build %s (%s %s, commit %s): %s", a.ref.Name(), a.ref.Repo, target(a.ref), a.ref.Commit, a.why)
}

func (a *deployHead) Apply(ctx context.Context, env *runner.Env) error {
	name, created, err := a.deployer.Deploy(ctx, a.ref)
	if err != nil {
		a.out.fail(err)
		return err
	}
	ctx = logging.WithBuild(ctx, a.ref, name)
	if !created {
		logging.From(ctx).Info().Msg("head already has its build")
		return nil
	}
	logging.From(ctx).Info().Str("why", a.why).Msg("build deployed")
	github.NotifyStatus(ctx, env.Statuses, a.ref.Repo, a.ref.Commit, github.StatusPending, env.BuildURL(name), pendingDescription)
	return nil
}

// deferred tells that heads are left to the next pass.
type deferred struct {
	n, limit int
}

func (a *deferred) String() string {
	return fmt.Sprintf("leave %d more heads to the next run: at most %d deploys a run (RUNBOAT_MAX_DEPLOYED)", a.n, a.limit)
}

func (a *deferred) Apply(context.Context, *runner.Env) error { return nil }

// invalid fails the pass on a head that is not a valid build reference.
type invalid struct {
	what string
	err  error
}

func (a *invalid) String() string { return "ignore the head " + a.what + ": " + a.err.Error() }

func (a *invalid) Apply(context.Context, *runner.Env) error {
	return fmt.Errorf("failed to deploy the head %s: %w", a.what, a.err)
}

// unread fails the pass: repositories could not be read, and their builds
// were left alone.
type unread struct {
	repos map[string]error
}

func (a *unread) String() string {
	return fmt.Sprintf("leave the builds of %s alone: not read from GitHub", strings.Join(sortedRepos(a.repos), ", "))
}

func (a *unread) Apply(context.Context, *runner.Env) error {
	var errs []error
	for _, r := range sortedRepos(a.repos) {
		errs = append(errs, a.repos[r])
	}
	return fmt.Errorf("failed to read %d repositories from GitHub, their builds left alone: %w", len(a.repos), errors.Join(errs...))
}

func (o *outcome) fail(err error) {
	if err != nil && o != nil {
		o.failed = true
	}
}

// target describes what a build is of: a branch or a pull request.
func target(r model.Ref) string {
	if r.PR != 0 {
		return fmt.Sprintf("pull request %d on %s", r.PR, r.TargetBranch)
	}
	return "branch " + r.TargetBranch
}
