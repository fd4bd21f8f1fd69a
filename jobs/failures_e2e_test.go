package jobs_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/testenv/localcluster"
)

var defaultQuotas = config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 10}

// TestE2EInitFailure: an init Job that fails leaves its build failed, with
// the reason in an annotation and the end of the log in a ConfigMap that
// outlives the pod: the log of the pod, which the local cluster's kwok
// serves through the API server.
func TestE2EInitFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/fail$", map[string]string{"initialize_kwok_fail": "true"}))
	name := h.deploy("acme/fail", "main", 0, 1)

	h.until("the build to fail", 2*time.Minute, []runner.Job{initializer.Job{}}, func(bs map[string]model.Build) bool {
		return bs[name].InitStatus == model.InitFailed
	})
	d := h.deployment(name)
	reason := d.Annotations[model.AnnotationInitFailure]
	for _, want := range []string{"BackoffLimitExceeded", "container initialize: Error, exit code 1"} {
		if !strings.Contains(reason, want) {
			t.Errorf("failure reason %q does not contain %q", reason, want)
		}
	}
	if !slices.Contains(h.eventReasons(d.Name), "InitFailed") {
		t.Errorf("events %v, want InitFailed among them", h.eventReasons(d.Name))
	}
	ctx := context.Background()
	cms := h.e.Client.CoreV1().ConfigMaps(h.e.Namespace)
	cm, err := cms.Get(ctx, model.InitLogName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("init log: %v", err)
	}
	t.Logf("init log kept: %q", cm.Data[model.InitLogKey])
	if cm.Labels[model.LabelBuild] != name || cm.Data[model.InitLogReasonKey] != reason || !strings.Contains(cm.Data[model.InitLogKey], localcluster.InitLogLine) {
		t.Errorf("init log ConfigMap: labels %v, data %v", cm.Labels, cm.Data)
	}

	// The pod goes; what was kept stays, and the next passes change nothing.
	pods := h.e.Client.CoreV1().Pods(h.e.Namespace)
	sel := labels.Set{model.LabelBuild: name, model.LabelJobKind: string(model.JobInitialize)}.String()
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the init pod to be gone", time.Minute, func(ctx context.Context) (bool, error) {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
		return err == nil && len(list.Items) == 0, err
	})
	h.run(initializer.Job{})
	again, err := cms.Get(ctx, model.InitLogName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("init log after the pod is gone: %v", err)
	}
	if again.Data[model.InitLogKey] != cm.Data[model.InitLogKey] || again.Data[model.InitLogReasonKey] != reason {
		t.Errorf("init log changed after the pod went: %v", again.Data)
	}
	if got := h.deployment(name).Annotations[model.AnnotationInitFailure]; got != reason {
		t.Errorf("failure reason changed to %q", got)
	}

	// A reset forgets the failure and initializes the build again.
	h.ask(name, (*ops.Ops).Reset)
	d = h.deployment(name)
	if d.Annotations[model.AnnotationInitStatus] != string(model.InitTodo) || d.Annotations[model.AnnotationInitFailure] != "" {
		t.Errorf("after reset: annotations %v", d.Annotations)
	}
	if _, err := cms.Get(ctx, model.InitLogName(name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after reset, the init log: %v, want not found", err)
	}
	if jobs := h.jobsOf(model.JobInitialize, name); len(jobs) != 0 && jobs[0].DeletionTimestamp == nil {
		t.Errorf("after reset, %d init Jobs left", len(jobs))
	}
}

// TestE2EInitImagePull: an init pod that cannot pull its image fails its
// build within the start timeout, and its Job is deleted.
func TestE2EInitImagePull(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/pull$", map[string]string{"initialize_kwok_waiting_reason": "ErrImagePull"}))
	const timeout = 3 * time.Second
	h.cfg.Jobs.InitStartTimeout = timeout
	name := h.deploy("acme/pull", "main", 0, 1)

	h.run(initializer.Job{})
	jobs := h.jobsOf(model.JobInitialize, name)
	if len(jobs) != 1 {
		t.Fatalf("%d init Jobs after the first pass, want 1", len(jobs))
	}
	launched := jobs[0].CreationTimestamp.Time

	h.until("the build to fail", 2*time.Minute, []runner.Job{initializer.Job{}}, func(bs map[string]model.Build) bool {
		return bs[name].InitStatus == model.InitFailed
	})
	// The pass that sees the pod waiting past the timeout fails the build;
	// passes run back to back, so it fails soon after the timeout (the bound
	// leaves room for a busy machine).
	if took := time.Since(launched); took > timeout+time.Minute {
		t.Errorf("the build failed %s after its Job was launched, timeout %s", took, timeout)
	}
	reason := h.deployment(name).Annotations[model.AnnotationInitFailure]
	if !strings.HasPrefix(reason, "ErrImagePull: init pod ") || !strings.Contains(reason, "not started after 3s") {
		t.Errorf("failure reason %q", reason)
	}
	waitFor(t, "the init Job to be gone", time.Minute, func(context.Context) (bool, error) {
		return len(h.jobsOf(model.JobInitialize, name)) == 0, nil
	})
	cm, err := h.e.Client.CoreV1().ConfigMaps(h.e.Namespace).Get(context.Background(), model.InitLogName(name), metav1.GetOptions{})
	if err != nil || cm.Data[model.InitLogReasonKey] != reason {
		t.Errorf("init log: %v, %v", cm, err)
	}
}

// TestE2ECleanupRetries: a failing cleanup Job is run again after a backoff,
// up to the limit, then the build is left marked, with an Event.
func TestE2ECleanupRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/dirty$", map[string]string{"cleanup_kwok_fail": "true"}))
	h.cfg.Jobs.CleanupAttempts = 2
	h.cfg.Jobs.CleanupBackoff = time.Second
	name := h.deploy("acme/dirty", "main", 0, 1)
	h.until("the build to be initialized", 2*time.Minute, []runner.Job{initializer.Job{}}, func(bs map[string]model.Build) bool {
		return bs[name].InitStatus == model.InitSucceeded
	})
	h.ask(name, (*ops.Ops).Undeploy)
	h.until("the cleanup to be given up", 3*time.Minute, []runner.Job{undeployer.Job{}}, func(bs map[string]model.Build) bool {
		return slices.Contains(h.eventReasons(bs[name].DeploymentName), "CleanupAbandoned")
	})
	d := h.deployment(name)
	if d.Annotations[model.AnnotationCleanupAttempts] != "2" || !strings.HasPrefix(d.Annotations[model.AnnotationCleanupFailure], "BackoffLimitExceeded") {
		t.Errorf("annotations %v", d.Annotations)
	}
	if !slices.Contains(h.eventReasons(d.Name), "CleanupFailed") {
		t.Errorf("events %v, want CleanupFailed (the first attempt) among them", h.eventReasons(d.Name))
	}
	if d.DeletionTimestamp == nil || !slices.Contains(d.Finalizers, model.Finalizer) {
		t.Errorf("the build should stay, being deleted, with its finalizer: %v %v", d.DeletionTimestamp, d.Finalizers)
	}
	// Given up: the next passes launch nothing.
	h.run(undeployer.Job{})
	jobs := h.jobsOf(model.JobCleanup, name)
	if len(jobs) != 1 || jobs[0].Annotations[model.AnnotationAttempt] != "2" {
		t.Errorf("cleanup Jobs after giving up: %d, want the last attempt kept", len(jobs))
	}
}

// TestE2ENoCleanupJob: with RUNBOAT_NO_CLEANUP_JOB, an undeployed build goes
// at once, with everything labelled with it.
func TestE2ENoCleanupJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/app$", nil))
	h.cfg.NoCleanupJob = true
	name := h.deploy("acme/app", "main", 0, 1)
	h.ask(name, (*ops.Ops).Undeploy)
	h.run(undeployer.Job{})
	if len(h.jobsOf(model.JobCleanup, name)) != 0 {
		t.Error("a cleanup Job was launched")
	}
	waitFor(t, "every object of the build to be gone", time.Minute, func(context.Context) (bool, error) {
		return len(h.leftovers(name)) == 0, nil
	})
}

// TestE2EOrphans: resources labelled with a build that has no Deployment are
// deleted once older than the grace period; those of a build that has one
// are not.
func TestE2EOrphans(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultQuotas, rule("^acme/app$", nil))
	live := h.deploy("acme/app", "main", 0, 1)
	liveObjects := h.leftovers(live)
	ctx := context.Background()
	for _, cm := range []string{"ghost-runboat-vars", "ghost-runboat-env"} {
		_, err := h.e.Client.CoreV1().ConfigMaps(h.e.Namespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: cm, Labels: map[string]string{model.LabelBuild: "ghost"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Younger than the grace period: kept.
	h.run(undeployer.Job{})
	if n := len(h.leftovers("ghost")); n != 2 {
		t.Fatalf("%d objects of the build without Deployment after a pass within the grace period, want 2", n)
	}
	h.cfg.Jobs.OrphanGracePeriod = time.Second
	waitFor(t, "the orphans to be deleted", time.Minute, func(context.Context) (bool, error) {
		h.run(undeployer.Job{})
		return len(h.leftovers("ghost")) == 0, nil
	})
	after := h.leftovers(live)
	for _, o := range liveObjects {
		if !slices.Contains(after, o) {
			t.Errorf("%s of the live build was deleted with the orphans", o)
		}
	}
}
