package ops

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
	"runboat.dev/shared/render"
)

// read reads the build of d and returns a context whose logger says which
// build it is.
func read(ctx context.Context, d *appsv1.Deployment) (context.Context, model.Build, error) {
	b, err := model.FromDeployment(d)
	if err != nil {
		return ctx, model.Build{}, err
	}
	return logging.WithBuild(ctx, b.Ref, b.Name), b, nil
}

// skip logs that an operation does nothing for the build's status.
func skip(ctx context.Context, op string, b model.Build) (bool, error) {
	logging.From(ctx).Info().Str("status", string(b.Status)).Msgf("not %s the build: it is %s", op, b.Status)
	return false, nil
}

// Start starts a stopped (or stopping) build: it applies the start mode of
// its kubefiles if they have one, scales it to 1 and stamps
// runboat/last-scaled. It does nothing, saying so in the log, for a build in
// any other status, as the Python runboat. why goes into the Event.
func (o *Ops) Start(ctx context.Context, d *appsv1.Deployment, why string) (bool, error) {
	ctx, b, err := read(ctx, d)
	if err != nil {
		return false, err
	}
	if b.Status != model.StatusStopped && b.Status != model.StatusStopping {
		return skip(ctx, "starting", b)
	}
	if _, err := o.ApplyMode(ctx, b, render.ModeStart); err != nil {
		return false, err
	}
	nd, err := o.Patch(ctx, NewPatch(d).Scale(1, o.clock.Now()))
	if err != nil {
		return false, fmt.Errorf("failed to start build %s: %w", b.Name, err)
	}
	logging.From(ctx).Info().Str("why", why).Msg("build started")
	o.events.Event(ctx, nd, Normal, "Started", "Start", "Scaled to 1: "+why)
	return true, nil
}

// Stop stops a started (or starting) build: it scales it to 0, stamps
// runboat/last-scaled, then applies the stop mode of its kubefiles if they
// have one. It does nothing, saying so in the log, for a build in any other
// status. (The Python runboat stops started builds only; a build stuck
// starting, its pod never ready, must be stoppable too.)
func (o *Ops) Stop(ctx context.Context, d *appsv1.Deployment, why string) (bool, error) {
	ctx, b, err := read(ctx, d)
	if err != nil {
		return false, err
	}
	if b.Status != model.StatusStarted && b.Status != model.StatusStarting {
		return skip(ctx, "stopping", b)
	}
	nd, err := o.Patch(ctx, NewPatch(d).Scale(0, o.clock.Now()))
	if err != nil {
		return false, fmt.Errorf("failed to stop build %s: %w", b.Name, err)
	}
	logging.From(ctx).Info().Str("why", why).Msg("build stopped")
	o.events.Event(ctx, nd, Normal, "Stopped", "Stop", "Scaled to 0: "+why)
	if _, err := o.ApplyMode(ctx, b, render.ModeStop); err != nil {
		return true, err
	}
	return true, nil
}

// Reset initializes a build again, as the Python runboat's redeploy: it kills
// its init and cleanup Jobs, applies its deployment mode again (which scales
// it to 0 and sets init-status back to todo, so that the initializer runs a
// new init Job), and forgets the last init failure. It does nothing for a
// build being undeployed.
func (o *Ops) Reset(ctx context.Context, d *appsv1.Deployment, why string) (bool, error) {
	ctx, b, err := read(ctx, d)
	if err != nil {
		return false, err
	}
	if b.Status == model.StatusUndeploying {
		return skip(ctx, "resetting", b)
	}
	objs, _, err := o.Render(b, render.ModeDeployment, o.clock.Now())
	if err != nil {
		return false, err
	}
	dep, rest, err := render.SplitDeployment(objs)
	if err != nil {
		return false, fmt.Errorf("failed to reset build %s: %w", b.Name, err)
	}
	if dep.GetName() != d.Name {
		return false, fmt.Errorf("failed to reset build %s: its kubefiles no longer render its Deployment %s", b.Name, d.Name)
	}
	if err := o.KillJobs(ctx, b.Name, model.JobInitialize, model.JobCleanup); err != nil {
		return false, err
	}
	// The init log goes before the build is to initialize again: the
	// initializer keeps the log of a failure it finds recorded.
	if err := o.client.CoreV1().ConfigMaps(o.builds.Namespace).Delete(ctx, model.InitLogName(b.Name), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("failed to delete the init log of build %s: %w", b.Name, err)
	}
	if err := o.applier.Apply(ctx, rest); err != nil {
		return false, fmt.Errorf("failed to reset build %s: %w", b.Name, err)
	}
	// The Deployment is applied as of the version read: a build that changed
	// since is not reset blindly.
	dep.SetResourceVersion(d.ResourceVersion)
	if err := o.applier.Apply(ctx, []*unstructured.Unstructured{dep}); err != nil {
		return false, writeError("reset build "+b.Name, err)
	}
	nd, err := o.client.AppsV1().Deployments(o.builds.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		return true, writeError("read build "+b.Name, err)
	}
	if nd, err = o.Patch(ctx, NewPatch(nd).RemoveAnnotation(model.AnnotationInitFailure)); err != nil {
		return true, fmt.Errorf("failed to forget the init failure of build %s: %w", b.Name, err)
	}
	logging.From(ctx).Info().Str("why", why).Msg("build reset")
	o.events.Event(ctx, nd, Normal, "Reset", "Reset", "Jobs killed, deployment applied again, initialization to do: "+why)
	return true, nil
}

// Undeploy deletes a build's Deployment, as of the version read. Its
// finalizer keeps it until the undeployer has run its cleanup Job and
// deleted its resources. It does nothing for a build already being
// undeployed.
func (o *Ops) Undeploy(ctx context.Context, d *appsv1.Deployment, why string) (bool, error) {
	ctx, b, err := read(ctx, d)
	if err != nil {
		return false, err
	}
	if b.Status == model.StatusUndeploying {
		return skip(ctx, "undeploying", b)
	}
	uid, rv := d.UID, d.ResourceVersion
	err = o.client.AppsV1().Deployments(o.builds.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
	})
	if err != nil {
		return false, writeError("undeploy build "+b.Name, err)
	}
	logging.From(ctx).Info().Str("why", why).Msg("build undeploying: deleted, its cleanup to run")
	o.events.Event(ctx, d, Normal, "Undeploying", "Undeploy", "Deleted, cleanup to run: "+why)
	return true, nil
}

// AdoptPatch returns the patch that adopts a build made by the Python
// runboat, or by an earlier version of this project: the labels
// runboat/commit (its git-commit annotation), runboat/target (what it is
// for, a branch or a pull request) and runboat/repo-key, which let the API
// server select the builds of a commit, a branch, a pull request or a
// repository, and runboat/init-status, the copy of the annotation, set
// again when it differs from it (the annotation is the truth). The change is
// additive: the pod template is untouched, nothing restarts. The patch is
// empty for a build that has every label right. A commit that is not a
// valid label value is left out.
func AdoptPatch(d *appsv1.Deployment) (*Patch, error) {
	p := NewPatch(d)
	_, hasCommit := d.Labels[model.LabelCommit]
	_, hasTarget := d.Labels[model.LabelTarget]
	_, hasRepo := d.Labels[model.LabelRepo]
	init := d.Annotations[model.AnnotationInitStatus]
	initRight := d.Labels[model.LabelInitStatus] == init || len(validation.IsValidLabelValue(init)) > 0
	if hasCommit && hasTarget && hasRepo && initRight {
		return p, nil
	}
	b, err := model.FromDeployment(d)
	if err != nil {
		return nil, err
	}
	if !hasCommit && len(validation.IsValidLabelValue(b.Ref.Commit)) == 0 {
		p.SetLabel(model.LabelCommit, model.CommitLabel(b.Ref.Commit))
	}
	if !hasTarget {
		p.SetLabel(model.LabelTarget, b.Ref.TargetKey())
	}
	if !hasRepo {
		p.SetLabel(model.LabelRepo, model.RepoKey(b.Ref.Repo))
	}
	if !initRight {
		p.SetLabel(model.LabelInitStatus, init)
	}
	return p, nil
}

// Adopt applies AdoptPatch and returns the Deployment as patched (as read
// when there was nothing to do).
func (o *Ops) Adopt(ctx context.Context, d *appsv1.Deployment) (*appsv1.Deployment, error) {
	p, err := AdoptPatch(d)
	if err != nil {
		return nil, err
	}
	if p.Empty() {
		return d, nil
	}
	nd, err := o.Patch(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("failed to adopt build %s: %w", d.Labels[model.LabelBuild], err)
	}
	logging.From(ctx).Info().Str("build", d.Labels[model.LabelBuild]).Msg("build adopted: labels added")
	o.events.Event(ctx, nd, Normal, "Adopted", "Adopt", "Labels runboat/commit, runboat/target, runboat/repo-key and runboat/init-status set")
	return nd, nil
}
