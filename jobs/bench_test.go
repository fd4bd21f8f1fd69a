package jobs_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
)

// benchSizes are the numbers of builds of BenchmarkPass:
// $RUNBOAT_BENCH_BUILDS (comma separated), 1000 by default.
func benchSizes(b *testing.B) []int {
	s := os.Getenv("RUNBOAT_BENCH_BUILDS")
	if s == "" {
		s = "1000"
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("RUNBOAT_BENCH_BUILDS: invalid size %q", f)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkPass measures one pass of each job over many builds on the local
// API server: wall time (ns/op), allocations (B/op, allocs/op), API
// requests (req/op), and the peak resident memory of the test process so
// far (maxrss-MB, setup included), next to a bare paginated list of the same
// Deployments. The builds' Deployments are created directly: all
// initialized and stopped, but a few to initialize, plus one ConfigMap per
// build (the undeployer lists a build's resources to find orphans).
//
//	RUNBOAT_BENCH_BUILDS=1000,10000 go test -run '^$' -bench Pass -benchtime 5x ./
func BenchmarkPass(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("builds=%d", n), func(b *testing.B) {
			e := e2e.New(b)
			cfg := runner.Config{
				Builds: config.Builds{
					Repos:     config.RepoRules{rule("^acme/", nil)},
					Namespace: e.Namespace,
					Domain:    "runboat.test",
				},
				Quotas:  config.Quotas{MaxInitializing: 2, MaxStarted: 6, MaxDeployed: n + 100},
				GitHub:  config.GitHub{DisableCommitStatuses: true, BaseURL: "http://runboat.test"},
				Cleanup: config.Cleanup{DeploymentResourceTypes: config.ResourceTypes{"deployment", "service", "ingress", "configmap", "secret", "pvc", "job"}},
				Jobs:    config.Jobs{InitStartTimeout: 5 * time.Minute, CleanupAttempts: 3, CleanupBackoff: time.Minute, OrphanGracePeriod: 10 * time.Minute},
			}
			start := time.Now()
			createBuilds(b, e, n)
			b.Logf("%d builds created in %s", n, time.Since(start).Round(time.Millisecond))

			b.Run("bare-list", func(b *testing.B) {
				c := &counter{}
				env := benchEnv(b, cfg, e.Config, "list", c)
				list := env.Client.AppsV1().Deployments(env.Namespace()).List
				opts := metav1.ListOptions{LabelSelector: runner.BuildSelector().String()}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					count := 0
					if _, _, err := kube.List(context.Background(), list, opts, func(*appsv1.Deployment) (struct{}, bool) {
						count++
						return struct{}{}, false
					}); err != nil {
						b.Fatal(err)
					}
					if count != n {
						b.Fatalf("listed %d Deployments, want %d", count, n)
					}
				}
				report(b, c)
			})
			for _, job := range []runner.Job{initializer.Job{}, stopper.Job{}, undeployer.Job{}} {
				b.Run(job.Name(), func(b *testing.B) {
					c := &counter{}
					env := benchEnv(b, cfg, e.Config, job.Name(), c)
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if err := runner.Run(context.Background(), env, job, runner.Options{}); err != nil {
							b.Fatal(err)
						}
					}
					report(b, c)
				})
			}
		})
	}
}

func benchEnv(b *testing.B, cfg runner.Config, admin *rest.Config, job string, c *counter) *runner.Env {
	b.Helper()
	rc := rest.CopyConfig(admin)
	rc.QPS, rc.Burst = 50, 100 // the jobs' defaults (kube.Config)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { c.next = rt; return c })
	clients, err := kube.NewClients(rc)
	if err != nil {
		b.Fatal(err)
	}
	env, err := runner.NewEnv(cfg, clients, job, runner.EnvOptions{Statuses: github.NoopStatusPoster{}, Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	return env
}

func report(b *testing.B, c *counter) {
	b.ReportMetric(float64(c.n.Load())/float64(b.N), "req/op")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB")
	}
}

// createBuilds creates n builds' Deployments (no finalizer: the test
// namespace goes without an undeployer) and a ConfigMap each.
func createBuilds(b *testing.B, e *e2e.Env, n int) {
	b.Helper()
	ctx := context.Background()
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := createBuild(ctx, e, i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

func createBuild(ctx context.Context, e *e2e.Env, i int) error {
	ref, err := model.NewRef("acme/app", fmt.Sprintf("branch-%d", i%50), 0, sha(i))
	if err != nil {
		return err
	}
	init := model.InitSucceeded
	if i%200 == 7 {
		init = model.InitTodo
	}
	name := ref.Name()
	labels := map[string]string{model.LabelBuild: name, model.LabelCommit: ref.Commit, model.LabelTarget: ref.TargetKey()}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name + "-web",
			Labels: labels,
			Annotations: map[string]string{
				model.AnnotationRepo:         ref.Repo,
				model.AnnotationTargetBranch: ref.TargetBranch,
				model.AnnotationPR:           "",
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
					Containers:                   []corev1.Container{{Name: "web", Image: image}},
				},
			},
		},
	}
	if _, err := e.Client.AppsV1().Deployments(e.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("failed to create build %d: %w", i, err)
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
