package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/model"
)

// Seed describes the builds CreateBuilds makes.
type Seed struct {
	// N is the number of builds.
	N int
	// Repos spreads them over acme/repo0 … acme/repo<Repos-1> (round
	// robin); 0 puts them all in acme/app.
	Repos int
	// TodoEvery leaves one build in TodoEvery to initialize (init-status
	// todo); the others are initialized. 0 initializes all.
	TodoEvery int
	// ConfigMaps gives each build a ConfigMap too, as its kubefiles would
	// (the undeployer lists a build's resources to find orphans).
	ConfigMaps bool
	// Image is the image of the builds' Deployments.
	Image string
}

// SeedRepo is the repository of the build numbered i of s.
func (s Seed) SeedRepo(i int) string {
	if s.Repos == 0 {
		return "acme/app"
	}
	return fmt.Sprintf("acme/repo%d", i%s.Repos)
}

// SeedRef is the reference of the build numbered i of s: a branch of 50 per
// repository, a commit of its own.
func (s Seed) SeedRef(i int) (model.Ref, error) {
	return model.NewRef(s.SeedRepo(i), fmt.Sprintf("branch-%d", i%50), 0, fmt.Sprintf("%040x", 0xc0ffee000+i))
}

// CreateBuilds makes the builds of s in the namespace of e directly with
// the API (16 at a time), stopped, as a namespace of that many builds holds
// them: a Deployment each, with the labels and annotations of the contract
// and no finalizer (a test namespace has no undeployer), and a ConfigMap if
// s says so. The Deployment controller makes their ReplicaSets.
func CreateBuilds(t testing.TB, e *Env, s Seed) {
	t.Helper()
	CreateBuildsFrom(t, e, s, 0)
}

// CreateBuildsFrom is CreateBuilds of the builds numbered from first on.
func CreateBuildsFrom(t testing.TB, e *Env, s Seed, first int) {
	t.Helper()
	start := time.Now()
	ctx := context.Background()
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := createBuild(ctx, e, s, i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range s.N {
		work <- first + i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("%d builds created in %s", s.N, time.Since(start).Round(time.Millisecond))
}

func createBuild(ctx context.Context, e *Env, s Seed, i int) error {
	ref, err := s.SeedRef(i)
	if err != nil {
		return err
	}
	init := model.InitSucceeded
	if s.TodoEvery > 0 && i%s.TodoEvery == 7%s.TodoEvery {
		init = model.InitTodo
	}
	name := ref.Name()
	labels := ref.Labels()
	depLabels := ref.Labels()
	depLabels[model.LabelInitStatus] = string(init)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name + "-web",
			Labels: depLabels,
			Annotations: map[string]string{
				model.AnnotationRepo:         ref.Repo,
				model.AnnotationTargetBranch: ref.TargetBranch,
				model.AnnotationPR:           ref.PRString(),
				model.AnnotationCommit:       ref.Commit,
				model.AnnotationInitStatus:   string(init),
				model.AnnotationLastScaled:   model.FormatTime(time.Now()),
			},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{model.LabelBuild: name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers:                   []corev1.Container{{Name: "web", Image: s.Image}},
				},
			},
		},
	}
	if _, err := e.Client.AppsV1().Deployments(e.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("failed to create build %d: %w", i, err)
	}
	if !s.ConfigMaps {
		return nil
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-runboat-vars", Labels: map[string]string{model.LabelBuild: name}},
		Data:       map[string]string{"name": name, "commit": ref.Commit},
	}
	if _, err := e.Client.CoreV1().ConfigMaps(e.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("failed to create the ConfigMap of build %d: %w", i, err)
	}
	return nil
}
