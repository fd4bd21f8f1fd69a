package initializer

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/render"
)

// describe names a build in an action's description.
func describe(b *runner.Build) string {
	what := "branch " + b.Ref.TargetBranch
	if b.Ref.PR != 0 {
		what = fmt.Sprintf("PR %d", b.Ref.PR)
	}
	return fmt.Sprintf("build %s (%s %s %.12s)", b.Name, b.Ref.Repo, what, b.Ref.Commit)
}

func buildContext(ctx context.Context, b *runner.Build) context.Context {
	return logging.WithBuild(ctx, b.Ref, b.Name)
}

func notify(ctx context.Context, env *runner.Env, b *runner.Build, state github.StatusState, description string) {
	github.NotifyStatus(ctx, env.Statuses, b.Ref.Repo, b.Ref.Commit, state, env.BuildURL(b.Name), description)
}

// launch launches the init Job of a build: init-status started first (so
// that a run stopped just after still counts the slot taken, and launches
// the Job again), then the Job. The plan decides the variants: again, the
// build's init-status is started already but its Job is gone (a run stopped
// between the two, or the Job deleted by hand), so only the Job is
// launched; found, an init Job of the build is there already, so only the
// init-status is set, and the Job's outcome is read at the next pass.
type launch struct {
	b        *runner.Build
	slot, of int
	again    bool
	// found is the name of the init Job found, empty when there is none.
	found string
}

func (a *launch) String() string {
	switch {
	case a.again:
		return fmt.Sprintf("launch again the init Job of %s: it is gone", describe(a.b))
	case a.found != "":
		return fmt.Sprintf("mark %s initializing: its init Job %s is there already, its outcome is read at the next pass (%d of %d initializing)",
			describe(a.b), a.found, a.slot, a.of)
	}
	return fmt.Sprintf("launch the init Job of %s (%d of %d initializing)", describe(a.b), a.slot, a.of)
}

func (a *launch) Apply(ctx context.Context, env *runner.Env) error {
	ctx = buildContext(ctx, a.b)
	now := env.Clock.Now()
	var objs []*unstructured.Unstructured
	if a.found == "" {
		var err error
		if objs, _, err = env.Ops.Render(a.b.Build, render.ModeInitialize, now); err != nil {
			return err
		}
	}
	d := a.b.Deployment
	if !a.again {
		var err error
		if d, err = env.Ops.Patch(ctx, ops.NewPatch(a.b.Deployment).SetInitStatus(model.InitStarted).Scale(0, now)); err != nil {
			return err
		}
	}
	if a.found != "" {
		logging.From(ctx).Info().Str("job", a.found).Msg("init Job found: its outcome is read at the next pass")
		env.Ops.Events().Event(ctx, d, ops.Normal, "Initializing", "Initialize", "Init Job found: its outcome is read at the next pass")
		return nil
	}
	if err := env.Ops.Applier().Apply(ctx, objs); err != nil {
		return fmt.Errorf("failed to launch the init Job of build %s: %w", a.b.Name, err)
	}
	if a.again {
		logging.From(ctx).Info().Msg("init Job launched again")
		env.Ops.Events().Event(ctx, d, ops.Normal, "Initializing", "Initialize", "Init Job was gone: launched again")
		return nil
	}
	logging.From(ctx).Info().Msg("init Job launched")
	env.Ops.Events().Event(ctx, d, ops.Normal, "Initializing", "Initialize",
		fmt.Sprintf("Init Job launched (%d of %d initializing)", a.slot, a.of))
	notify(ctx, env, a.b, github.StatusPending, "Initializing")
	return nil
}

// markSucceeded records a succeeded init Job: the stop mode is applied, then
// init-status becomes succeeded (the build is stopped, ready to start).
type markSucceeded struct {
	b *runner.Build
}

func (a *markSucceeded) String() string {
	return fmt.Sprintf("mark %s succeeded: its init Job completed", describe(a.b))
}

func (a *markSucceeded) Apply(ctx context.Context, env *runner.Env) error {
	ctx = buildContext(ctx, a.b)
	if _, err := env.Ops.ApplyMode(ctx, a.b.Build, render.ModeStop); err != nil {
		return err
	}
	d, err := env.Ops.Patch(ctx, ops.NewPatch(a.b.Deployment).SetInitStatus(model.InitSucceeded))
	if err != nil {
		return err
	}
	logging.From(ctx).Info().Msg("build initialized")
	env.Ops.Events().Event(ctx, d, ops.Normal, "Initialized", "Initialize", "Init Job succeeded: ready to start")
	notify(ctx, env, a.b, github.StatusSuccess, "Ready")
	return nil
}

// markFailed fails a build: for a failed init Job, the end of its log and
// the reason go first into the build's init log ConfigMap (keepLog), and a
// Job that never started is deleted (kill); then init-status becomes failed
// with the reason in an annotation.
type markFailed struct {
	b      *runner.Build
	reason string
	// why says what happened, for the description.
	why string
	// keepLog is set when the log of pods is to be kept: the init log
	// ConfigMap does not exist yet (when it does, a previous run kept the
	// log, which may no longer be readable).
	keepLog bool
	pods    []corev1.Pod
	logs    LogReader
	// kill is the failed Job to delete, nil for none.
	kill *batchv1.Job
}

func (a *markFailed) String() string {
	return fmt.Sprintf("mark %s failed: %s: %s", describe(a.b), a.why, a.reason)
}

func (a *markFailed) Apply(ctx context.Context, env *runner.Env) error {
	ctx = buildContext(ctx, a.b)
	if a.keepLog {
		text := CaptureLog(ctx, a.logs, a.pods)
		if err := saveLog(ctx, env, a.b.Deployment, a.b.Name, a.reason, text); err != nil {
			return err
		}
	}
	if a.kill != nil {
		if err := env.Ops.DeleteJob(ctx, a.kill.Name, a.kill.UID); err != nil {
			return err
		}
	}
	return fail(ctx, env, a.b, a.b.Deployment, a.reason)
}

// fail sets init-status failed, the reason, and 0 replicas.
func fail(ctx context.Context, env *runner.Env, b *runner.Build, d *appsv1.Deployment, reason string) error {
	p := ops.NewPatch(d).
		SetInitStatus(model.InitFailed).
		SetAnnotation(model.AnnotationInitFailure, reason).
		Scale(0, env.Clock.Now())
	nd, err := env.Ops.Patch(ctx, p)
	if err != nil {
		return err
	}
	logging.From(ctx).Warn().Str("reason", reason).Msg("build initialization failed")
	env.Ops.Events().Event(ctx, nd, ops.Warning, "InitFailed", "Initialize", reason)
	notify(ctx, env, b, github.StatusFailure, "Initialization failed")
	return nil
}

// saveLog keeps the end of a failed init log and its reason in the build's
// init log ConfigMap, labelled with the build and owned by its Deployment so
// that it goes with the build. An existing one is kept: it holds the log of
// the same failure, read when it was still readable.
func saveLog(ctx context.Context, env *runner.Env, d *appsv1.Deployment, name, reason, text string) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      model.InitLogName(name),
			Namespace: env.Namespace(),
			Labels:    map[string]string{model.LabelBuild: name},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1",
				Kind:       "Deployment",
				Name:       d.Name,
				UID:        d.UID,
				Controller: ptr.To(false),
			}},
		},
		Data: map[string]string{
			model.InitLogReasonKey: reason,
			model.InitLogKey:       text,
		},
	}
	_, err := env.Client.CoreV1().ConfigMaps(env.Namespace()).Create(ctx, cm, metav1.CreateOptions{FieldManager: model.FieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to keep the init log of build %s: %w", name, err)
	}
	return nil
}
