package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/model"
)

// benchBuilds is the size of the reference deployment: about 7,000 builds.
const benchBuilds = 7000

// fakeBuilds returns n build Deployments over 50 repositories.
func fakeBuilds(n int) []runtime.Object {
	out := make([]runtime.Object, n)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		repo := fmt.Sprintf("acme/repo%d", i%50)
		pr := 0
		if i%3 != 0 {
			pr = i
		}
		ref := model.Ref{Repo: repo, TargetBranch: fmt.Sprintf("%d.0", 14+i%4), PR: pr, Commit: sha(fmt.Sprint(i))}
		out[i] = &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{
				Name: ref.Name() + "-odoo", Namespace: "builds",
				CreationTimestamp: metav1.NewTime(created.Add(time.Duration(i) * time.Minute)),
				Labels:            map[string]string{model.LabelBuild: ref.Name()},
				Annotations: map[string]string{
					model.AnnotationRepo: ref.Repo, model.AnnotationTargetBranch: ref.TargetBranch,
					model.AnnotationPR: ref.PRString(), model.AnnotationCommit: ref.Commit,
					model.AnnotationInitStatus: string(model.InitSucceeded),
				},
			},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(i % 2))},
		}
	}
	return out
}

// BenchmarkRepoPagePoll measures what the console does for one poll of a
// repository page with 7,000 builds deployed: list (the fake client copies
// the objects where a real one decodes them), read, filter, sort, group and
// render.
func BenchmarkRepoPagePoll(b *testing.B) { benchGet(b, "/repos/acme/repo7?part=body") }

// BenchmarkListBuildsAPI measures GET /api/v1/builds of every build.
func BenchmarkListBuildsAPI(b *testing.B) { benchGet(b, "/api/v1/builds") }

// benchGet measures a GET of path on a console of benchBuilds builds.
func benchGet(b *testing.B, path string) {
	o := validOptions()
	o.Client = fake.NewClientset(fakeBuilds(benchBuilds)...)
	h, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
