package undeployer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/render"
)

var (
	jobsResource        = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	deploymentsResource = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

func buildContext(ctx context.Context, b *runner.Build) context.Context {
	return logging.WithBuild(ctx, b.Ref, b.Name)
}

// startCleanup starts the cleanup of a build being undeployed: its init Job
// is killed (so that it creates nothing the cleanup has dropped), it is
// scaled to 0, and its cleanup Job is launched, unless running already, or
// unless the plan found that none can run (abandon).
type startCleanup struct {
	b           *runner.Build
	attempt, of int
	killInit    bool
	// running is set when the cleanup Job runs already: a previous run
	// stopped before killing the init Job or scaling down.
	running bool
	// abandon, when set, is recorded instead of launching a cleanup Job:
	// none can be rendered for the build.
	abandon *recordCleanupFailure
}

func (a *startCleanup) String() string {
	var steps string
	if a.killInit {
		steps += "kill its init Job, "
	}
	if a.b.DesiredReplicas != 0 {
		steps += "scale it to 0, "
	}
	switch {
	case a.running:
		return fmt.Sprintf("undeploying %s: %sits cleanup Job runs", describe(a.b), steps)
	case a.abandon != nil:
		return fmt.Sprintf("undeploying %s: %sno cleanup Job can run, giving up: %s", describe(a.b), steps, a.abandon.reason)
	}
	return fmt.Sprintf("undeploying %s: %slaunch its cleanup Job (attempt %d of %d)", describe(a.b), steps, a.attempt, a.of)
}

func (a *startCleanup) Apply(ctx context.Context, env *runner.Env) error {
	ctx = buildContext(ctx, a.b)
	if a.killInit {
		if err := env.Ops.KillJobs(ctx, a.b.Name, model.JobInitialize); err != nil {
			return err
		}
	}
	d, err := env.Ops.Patch(ctx, ops.NewPatch(a.b.Deployment).Scale(0, env.Clock.Now()))
	if err != nil {
		return err
	}
	switch {
	case a.running:
		return nil
	case a.abandon != nil:
		return a.abandon.record(ctx, env, d)
	}
	objs, _, err := env.Ops.Render(a.b.Build, render.ModeCleanup, env.Clock.Now())
	if err != nil {
		return err
	}
	for _, o := range objs {
		if o.GetKind() == "Job" {
			ann := o.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[model.AnnotationAttempt] = strconv.Itoa(a.attempt)
			o.SetAnnotations(ann)
		}
	}
	if err := env.Ops.Applier().Apply(ctx, objs); err != nil {
		return fmt.Errorf("failed to launch the cleanup Job of build %s: %w", a.b.Name, err)
	}
	logging.From(ctx).Info().Int("attempt", a.attempt).Msg("cleanup Job launched")
	env.Ops.Events().Event(ctx, d, ops.Normal, "CleaningUp", "Cleanup",
		fmt.Sprintf("Cleanup Job launched (attempt %d of %d)", a.attempt, a.of))
	return nil
}

// finish ends the undeploying of a build: every resource labelled with it is
// deleted, then its finalizer removed, which lets its Deployment go, then its
// Jobs (kept until then: a run stopped before the finalizer is removed finds
// the cleanup Job's success again).
type finish struct {
	b   *runner.Build
	why string
}

func (a *finish) String() string {
	return fmt.Sprintf("undeploying %s: %s: delete its resources, remove its finalizer", describe(a.b), a.why)
}

func (a *finish) Apply(ctx context.Context, env *runner.Env) error {
	ctx = buildContext(ctx, a.b)
	resources, err := Resources(env)
	if err != nil {
		return err
	}
	var first []schema.GroupVersionResource
	for _, r := range resources {
		// The build's Deployment goes when its finalizer is removed, its
		// Jobs after that.
		if r.GroupResource() != deploymentsResource.GroupResource() && r.GroupResource() != jobsResource.GroupResource() {
			first = append(first, r)
		}
	}
	if err := env.Ops.DeleteResources(ctx, a.b.Name, first); err != nil {
		return err
	}
	env.Ops.Events().Event(ctx, a.b.Deployment, ops.Normal, "Undeployed", "Undeploy", "Resources deleted: "+a.why)
	if _, err := env.Ops.Patch(ctx, ops.NewPatch(a.b.Deployment).RemoveFinalizer(model.Finalizer)); err != nil && !errors.Is(err, ops.ErrNotFound) {
		return err
	}
	if err := env.Ops.KillJobs(ctx, a.b.Name, model.JobInitialize, model.JobCleanup); err != nil {
		return err
	}
	if err := env.Ops.DeleteResources(ctx, a.b.Name, []schema.GroupVersionResource{jobsResource}); err != nil {
		return err
	}
	logging.From(ctx).Info().Msg("build undeployed: resources deleted, finalizer removed")
	return nil
}

// recordCleanupFailure records a failed cleanup attempt on the build; when
// attempts remain, the failed Job is deleted so that the next attempt can
// start after the backoff; otherwise the Job is kept and the build left for
// a person to look at.
type recordCleanupFailure struct {
	b           *runner.Build
	attempt, of int
	reason      string
	retryAfter  time.Time
	// job is the failed cleanup Job, nil when none ran.
	job *batchv1.Job
}

func (a *recordCleanupFailure) final() bool { return a.attempt >= a.of }

func (a *recordCleanupFailure) String() string {
	if a.final() {
		return fmt.Sprintf("undeploying %s: cleanup attempt %d of %d failed, giving up: %s", describe(a.b), a.attempt, a.of, a.reason)
	}
	return fmt.Sprintf("undeploying %s: cleanup attempt %d of %d failed, next after %s: %s",
		describe(a.b), a.attempt, a.of, model.FormatTime(a.retryAfter), a.reason)
}

func (a *recordCleanupFailure) Apply(ctx context.Context, env *runner.Env) error {
	return a.record(buildContext(ctx, a.b), env, a.b.Deployment)
}

// record records the failure on d, the build's Deployment as last written.
func (a *recordCleanupFailure) record(ctx context.Context, env *runner.Env, d *appsv1.Deployment) error {
	p := ops.NewPatch(d).
		SetAnnotation(model.AnnotationCleanupAttempts, strconv.Itoa(a.attempt)).
		SetAnnotation(model.AnnotationCleanupFailure, a.reason)
	if a.final() {
		p.RemoveAnnotation(model.AnnotationCleanupRetryAfter)
	} else {
		p.SetAnnotation(model.AnnotationCleanupRetryAfter, model.FormatTime(a.retryAfter))
	}
	d, err := env.Ops.Patch(ctx, p)
	if err != nil {
		return err
	}
	if a.final() {
		logging.From(ctx).Error().Str("reason", a.reason).Int("attempts", a.attempt).Msg("cleanup failed: giving up, the build needs a person")
		env.Ops.Events().Event(ctx, d, ops.Warning, "CleanupAbandoned", "Cleanup", fmt.Sprintf(
			"Cleanup failed %d times, giving up: %s. To try again: delete the failed cleanup Job and remove the annotation %s",
			a.attempt, a.reason, model.AnnotationCleanupAttempts))
		return nil
	}
	if a.job != nil {
		if err := env.Ops.DeleteJob(ctx, a.job.Name, a.job.UID); err != nil {
			return err
		}
	}
	logging.From(ctx).Warn().Str("reason", a.reason).Int("attempt", a.attempt).Msg("cleanup failed: will try again")
	env.Ops.Events().Event(ctx, d, ops.Warning, "CleanupFailed", "Cleanup", fmt.Sprintf(
		"Cleanup attempt %d of %d failed: %s; next attempt after %s", a.attempt, a.of, a.reason, model.FormatTime(a.retryAfter)))
	return nil
}

// evict undeploys a build (ops.Undeploy).
type evict struct {
	b   *runner.Build
	why string
}

func (a *evict) String() string {
	return fmt.Sprintf("undeploy %s, last scaled %s: %s", describe(a.b), model.FormatTime(a.b.LastScaled), a.why)
}

func (a *evict) Apply(ctx context.Context, env *runner.Env) error {
	_, err := env.Ops.Undeploy(ctx, a.b.Deployment, a.why)
	return err
}

// deleteOrphans deletes the resources of a build that has no Deployment,
// after checking again that it has none.
type deleteOrphans struct {
	build   string
	objects []Object
	grace   time.Duration
}

func (a *deleteOrphans) String() string {
	return fmt.Sprintf("delete %d resources of build %s: it has no Deployment, they are older than %s", len(a.objects), a.build, a.grace)
}

func (a *deleteOrphans) Apply(ctx context.Context, env *runner.Env) error {
	log := logging.From(ctx).With().Str("build", a.build).Logger()
	found, err := env.Metadata.Resource(deploymentsResource).Namespace(env.Namespace()).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{model.LabelBuild: a.build}.String(),
		Limit:         1,
	})
	if err != nil {
		return fmt.Errorf("failed to check the Deployment of build %s: %w", a.build, err)
	}
	if len(found.Items) > 0 {
		log.Info().Msg("build has a Deployment now: its resources are not orphans")
		return nil
	}
	var errs []error
	for _, o := range a.objects {
		uid := o.UID
		err := env.Metadata.Resource(o.Resource).Namespace(env.Namespace()).Delete(ctx, o.Name, metav1.DeleteOptions{
			Preconditions:     &metav1.Preconditions{UID: &uid},
			PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
		})
		if err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("failed to delete %s %s of build %s: %w", o.Resource.Resource, o.Name, a.build, err))
			continue
		}
		log.Info().Str("resource", o.Resource.Resource).Str("name", o.Name).Msg("orphan resource deleted")
	}
	return errors.Join(errs...)
}
