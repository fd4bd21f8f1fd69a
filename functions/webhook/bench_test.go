package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// The webhook's cost for a new build, measured on the local API server next
// to the cost of one bare Deployment create in the same run:
//
//	make bench   (or: cd functions && go test -run '^$' -bench Webhook ./webhook/)

func bareDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1.36"}}},
			},
		},
	}
}

// pushFor returns a signed push delivery of a new commit, numbered n.
func pushFor(b *testing.B, template []byte, n int64) *http.Request {
	body := edit(b, template, func(m map[string]any) { m["after"] = fmt.Sprintf("%040x", n) })
	return delivery("push", body)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func BenchmarkWebhookNewBuild(b *testing.B) {
	env := e2e.New(b)
	builds := testBuilds(b, env.Namespace)
	d := newDeployer(b, manifests.InstallFunction(b, env), builds)
	f := newFixture(b, func(o *Options) { o.Deployer = d; o.Supported = builds.Supported })
	template := payload(b, "push.branch")
	deps := env.Client.AppsV1().Deployments(env.Namespace)
	ctx := context.Background()
	var seq atomic.Int64

	// Latency: a bare create and a webhook delivery, one after the other, so
	// that both see the same API server load.
	b.Run("latency", func(b *testing.B) {
		var bare, hook []time.Duration
		for b.Loop() {
			n := seq.Add(1)
			r := pushFor(b, template, n)
			start := time.Now()
			if _, err := deps.Create(ctx, bareDeployment(fmt.Sprintf("bare-%d", n)), metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			bare = append(bare, time.Since(start))
			start = time.Now()
			if w := f.serve(r); w.Code != http.StatusCreated {
				b.Fatalf("webhook: %d %s", w.Code, w.Body.String())
			}
			hook = append(hook, time.Since(start))
		}
		b.ReportMetric(ms(percentile(bare, 0.5)), "bare-p50-ms")
		b.ReportMetric(ms(percentile(bare, 0.99)), "bare-p99-ms")
		b.ReportMetric(ms(percentile(hook, 0.5)), "webhook-p50-ms")
		b.ReportMetric(ms(percentile(hook, 0.99)), "webhook-p99-ms")
		b.ReportMetric(float64(percentile(hook, 0.5))/float64(percentile(bare, 0.5)), "p50-ratio")
	})

	// Throughput: 8 concurrent clients.
	b.Run("throughput-bare", func(b *testing.B) {
		b.SetParallelism(4) // 4 x GOMAXPROCS (2) = 8 clients
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := deps.Create(ctx, bareDeployment(fmt.Sprintf("bare-%d", seq.Add(1))), metav1.CreateOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
	})
	b.Run("throughput-webhook", func(b *testing.B) {
		b.SetParallelism(4)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if w := f.serve(pushFor(b, template, seq.Add(1))); w.Code != http.StatusCreated {
					b.Errorf("webhook: %d %s", w.Code, w.Body.String())
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "builds/s")
	})
}
