package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/localcluster"
)

// These tests prove that the local control plane runs the real controllers
// and that the kwok stages behave as the project's tests expect.

func podSpec(restart corev1.RestartPolicy) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:                restart,
		AutomountServiceAccountToken: ptr.To(false),
		Containers:                   []corev1.Container{{Name: "main", Image: "busybox"}},
	}
}

func TestDeploymentBecomesAvailable(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       podSpec(corev1.RestartPolicyAlways),
			},
		},
	}
	deps := env.Client.AppsV1().Deployments(env.Namespace)
	if _, err := deps.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The Deployment controller writes the Deployment too: scale it up with
	// a re-read on conflict, as any client must.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		scale, err := deps.GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		scale.Spec.Replicas = 2
		_, err = deps.UpdateScale(ctx, "web", scale, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e2e.Wait(t, "2 ready replicas", func(ctx context.Context) (bool, error) {
		got, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		available := false
		for _, c := range got.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				available = true
			}
		}
		return available && got.Status.ReadyReplicas == 2 && got.Status.AvailableReplicas == 2, nil
	})
}

func job(name string, annotations map[string]string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: annotations},
				Spec:       podSpec(corev1.RestartPolicyNever),
			},
		},
	}
}

func TestJobCompletes(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	j := job("ok", map[string]string{"runboat.dev/kwok-delay": "500ms"})
	if _, err := env.Client.BatchV1().Jobs(env.Namespace).Create(context.Background(), j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := env.WaitJob(t, "ok", batchv1.JobComplete)
	if got.Status.Succeeded != 1 || got.Status.Failed != 0 {
		t.Errorf("succeeded=%d failed=%d, want 1 and 0", got.Status.Succeeded, got.Status.Failed)
	}
}

func TestJobFailsOnAnnotation(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx := context.Background()
	j := job("boom", map[string]string{
		"runboat.dev/kwok-fail":        "true",
		"runboat.dev/kwok-exit-code":   "137",
		"runboat.dev/kwok-fail-reason": "OOMKilled",
		"runboat.dev/kwok-delay":       "200ms",
	})
	if _, err := env.Client.BatchV1().Jobs(env.Namespace).Create(ctx, j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := env.WaitJob(t, "boom", batchv1.JobFailed)
	if got.Status.Failed != 1 || got.Status.Succeeded != 0 {
		t.Errorf("failed=%d succeeded=%d, want 1 and 0", got.Status.Failed, got.Status.Succeeded)
	}
	pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=boom"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("got %d pods, want 1", len(pods.Items))
	}
	p := pods.Items[0]
	if p.Status.Phase != corev1.PodFailed || len(p.Status.ContainerStatuses) != 1 {
		t.Fatalf("pod phase %s with %d container statuses, want Failed with 1", p.Status.Phase, len(p.Status.ContainerStatuses))
	}
	term := p.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 137 || term.Reason != "OOMKilled" {
		t.Errorf("terminated state %+v, want exit code 137 and reason OOMKilled", term)
	}
}

func TestPodWaitingReason(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	pods := env.Client.CoreV1().Pods(env.Namespace)
	for _, reason := range []string{"ErrImagePull", "ImagePullBackOff"} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:        "pull-" + map[string]string{"ErrImagePull": "err", "ImagePullBackOff": "backoff"}[reason],
				Annotations: map[string]string{"runboat.dev/kwok-waiting-reason": reason},
			},
			Spec: podSpec(corev1.RestartPolicyNever),
		}
		if _, err := pods.Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e2e.Wait(t, "waiting reason "+reason, func(ctx context.Context) (bool, error) {
			got, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cs := range got.Status.ContainerStatuses {
				if cs.State.Waiting != nil && cs.State.Waiting.Reason == reason {
					return got.Status.Phase == corev1.PodPending, nil
				}
			}
			return false, nil
		})
	}
}

// The Service range holds more Services than a /24 (the API server's
// default): a namespace of benchmark builds, each with its Service, must
// not run out of cluster IPs.
func TestServiceRangeHoldsManyServices(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx := context.Background()
	const n = 300 // more than the 254 addresses of a /24
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, errs[i] = env.Client.CoreV1().Services(env.Namespace).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i)},
				Spec: corev1.ServiceSpec{
					Selector: map[string]string{"app": "web"},
					Ports:    []corev1.ServicePort{{Port: 80}},
				},
			}, metav1.CreateOptions{})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("creating %d Services: %v", n, err)
	}
}

// Pods have the logs of localcluster.ContainerLogs, read through the API
// server; a container without one gives an error.
func TestPodLogs(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "logs"},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "web", Image: "busybox"}, {Name: "nolog", Image: "busybox"}},
		},
	}
	pods := env.Client.CoreV1().Pods(env.Namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e2e.Wait(t, "the pod to run", func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, "logs", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	got, err := pods.GetLogs("logs", &corev1.PodLogOptions{Container: "web"}).DoRaw(ctx)
	if want := strings.Join(localcluster.ContainerLogs["web"], "\n") + "\n"; err != nil || string(got) != want {
		t.Errorf("log of container web: %q, %v; want %q", got, err, want)
	}
	tail, err := pods.GetLogs("logs", &corev1.PodLogOptions{Container: "web", TailLines: ptr.To[int64](1)}).DoRaw(ctx)
	if want := localcluster.ContainerLogs["web"][1] + "\n"; err != nil || string(tail) != want {
		t.Errorf("last line of the log of container web: %q, %v; want %q", tail, err, want)
	}
	if got, err := pods.GetLogs("logs", &corev1.PodLogOptions{Container: "nolog"}).DoRaw(ctx); err == nil {
		t.Errorf("log of a container without one: %q, want an error", got)
	}
}
