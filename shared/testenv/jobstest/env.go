package jobstest

import (
	"runboat.dev/shared/kube"

	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	metadatafake "k8s.io/client-go/metadata/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/runner"
)

// resources are the resource types the fake cluster's discovery knows.
var resources = []*metav1.APIResourceList{
	{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", ShortNames: []string{"cm"}},
		{Name: "secrets", Namespaced: true, Kind: "Secret"},
		{Name: "services", Namespaced: true, Kind: "Service", ShortNames: []string{"svc"}},
		{Name: "persistentvolumeclaims", Namespaced: true, Kind: "PersistentVolumeClaim", ShortNames: []string{"pvc"}},
		{Name: "pods", Namespaced: true, Kind: "Pod", ShortNames: []string{"po"}},
	}},
	{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
		{Name: "deployments", Namespaced: true, Kind: "Deployment", ShortNames: []string{"deploy"}},
	}},
	{GroupVersion: "batch/v1", APIResources: []metav1.APIResource{
		{Name: "jobs", Namespaced: true, Kind: "Job"},
	}},
	{GroupVersion: "networking.k8s.io/v1", APIResources: []metav1.APIResource{
		{Name: "ingresses", Namespaced: true, Kind: "Ingress", ShortNames: []string{"ing"}},
	}},
}

// Config is the configuration of the jobs in the tests: the builds of the
// repositories acme/* (any branch), in the namespace builds, with quotas q.
func Config(q config.Quotas) runner.Config {
	return runner.Config{
		Builds: config.Builds{
			Repos:     config.RepoRules{config.MustRepoRule("^acme/", ".*", config.BuildSettings{Image: "busybox"})},
			Namespace: "builds",
			Domain:    "runboat.test",
		},
		Quotas: q,
		Jobs:   config.Jobs{InitStartTimeout: 5 * time.Minute, CleanupAttempts: 3, CleanupBackoff: time.Minute, OrphanGracePeriod: 10 * time.Minute},
	}
}

// Env returns the environment of the job named job on a fake cluster that
// holds objs (typed objects of client-go's scheme: Deployments, Jobs,
// pods, ConfigMaps...), also seen through the metadata client, with the
// clock at now. Commit statuses go nowhere.
func Env(t testing.TB, cfg runner.Config, job string, now time.Time, objs ...runtime.Object) *runner.Env {
	t.Helper()
	cs := fake.NewClientset(objs...)
	cs.Resources = resources
	metas := make([]runtime.Object, 0, len(objs))
	for _, o := range objs {
		gvks, _, err := scheme.Scheme.ObjectKinds(o)
		if err != nil {
			t.Fatalf("object %T: %v", o, err)
		}
		acc, ok := o.(metav1.ObjectMetaAccessor)
		if !ok {
			t.Fatalf("object %T has no metadata", o)
		}
		om, ok := acc.GetObjectMeta().(*metav1.ObjectMeta)
		if !ok {
			t.Fatalf("object %T: metadata %T", o, acc.GetObjectMeta())
		}
		pom := &metav1.PartialObjectMetadata{ObjectMeta: *om.DeepCopy()}
		pom.APIVersion, pom.Kind = gvks[0].ToAPIVersionAndKind()
		metas = append(metas, pom)
	}
	metaScheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(metaScheme); err != nil {
		t.Fatal(err)
	}
	clients := &kube.Clients{
		Typed:    cs,
		Dynamic:  dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		Metadata: metadatafake.NewSimpleMetadataClient(metaScheme, metas...),
		Mapper:   kube.NewMapper(cs.Discovery()),
	}
	env, err := runner.NewEnv(cfg, clients, job, runner.EnvOptions{
		Clock:    clocktesting.NewFakeClock(now),
		Identity: "test",
		Statuses: github.NoopStatusPoster{},
		Out:      &bytes.Buffer{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// Objects returns the Deployments of builds, then the other objects, as
// Env takes them.
func Objects(builds []*runner.Build, others ...runtime.Object) []runtime.Object {
	out := make([]runtime.Object, 0, len(builds)+len(others))
	for _, b := range builds {
		out = append(out, b.Deployment)
	}
	return append(out, others...)
}

// DryRun runs job on env as --dry-run does, and returns what it prints.
func DryRun(t testing.TB, env *runner.Env, job runner.Job) string {
	t.Helper()
	var out bytes.Buffer
	env.Out = &out
	if err := runner.Run(context.Background(), env, job, runner.Options{DryRun: true}); err != nil {
		t.Fatalf("dry run of the %s: %v", job.Name(), err)
	}
	return out.String()
}

// update is the -update flag of the tests of the jobs.
var update = flag.Bool("update", false, "rewrite the golden files of the dry-run output")

// Golden compares got with the golden file testdata/golden/name.txt, or,
// with the test's -update flag, writes it there.
func Golden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if string(want) == got {
		return
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
	var diff []string
	for i := range max(len(wl), len(gl)) {
		w, g := line(wl, i), line(gl, i)
		if w != g {
			diff = append(diff, "- "+w, "+ "+g)
		}
	}
	t.Errorf("output differs from %s (run the test with -update after checking the change):\n%s", path, strings.Join(diff, "\n"))
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}
