package initializer_test

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
)

// The function's pass (RunOnce) reads only the builds to initialize and
// initializing, by their label, and those without the label, launches the
// init Jobs of both kinds, and leaves adoption to a full pass; a full pass
// reads every build and sets the labels of the one that lacked them.
func TestE2ERunOnceReadsWhatItNeeds(t *testing.T) {
	env := e2e.New(t)
	seed := e2e.Seed{N: 30, TodoEvery: 0, Image: "busybox:1.36"}
	e2e.CreateBuilds(t, env, seed)
	todo := seed
	todo.N, todo.TodoEvery = 2, 1
	e2e.CreateBuildsFrom(t, env, todo, 100)
	ctx := context.Background()
	deps := env.Client.AppsV1().Deployments(env.Namespace)
	// Build 101 as an earlier version made it: no runboat/init-status nor
	// runboat/repo-key label.
	ref101, err := todo.SeedRef(101)
	if err != nil {
		t.Fatal(err)
	}
	d, err := deps.Get(ctx, ref101.Name()+"-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(d.Labels, model.LabelInitStatus)
	delete(d.Labels, model.LabelRepo)
	if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	rule, err := config.NewRepoRule("^acme/", ".*", config.BuildSettings{Image: "busybox:1.36", KubefilesPath: filepath.Join("..", "..", "..", "kubefiles", "demo")})
	if err != nil {
		t.Fatal(err)
	}
	cfg, reqs := e2e.Counting(env.Config)
	clients, err := kube.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	renv, err := runner.NewEnv(runner.Config{
		Builds: config.Builds{Repos: config.RepoRules{rule}, Namespace: env.Namespace, Domain: "builds.example.org"},
		Quotas: config.Quotas{MaxInitializing: 5, MaxStarted: 5, MaxDeployed: 100},
		GitHub: config.GitHub{DisableCommitStatuses: true, BaseURL: "http://runboat.test"},
		Jobs:   config.Jobs{InitStartTimeout: 5 * time.Minute, CleanupAttempts: 3, CleanupBackoff: time.Minute, OrphanGracePeriod: 10 * time.Minute},
	}, clients, initializer.Name, runner.EnvOptions{Statuses: github.NoopStatusPoster{}, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := initializer.RunOnce(ctx, renv); err != nil {
		t.Fatal(err)
	}
	var lists []string
	for _, s := range reqs.TakeSelectors() {
		if s[:len("deployments ")] == "deployments " {
			lists = append(lists, s)
		}
	}
	want := []string{
		"deployments runboat/build,!runboat/init-status",
		"deployments runboat/build,runboat/init-status in (started,todo)",
	}
	if !slices.Equal(lists, want) {
		t.Errorf("the pass listed the Deployments with %q, want %q", lists, want)
	}
	for _, i := range []int{100, 101} {
		ref, _ := todo.SeedRef(i)
		d, err := deps.Get(ctx, ref.Name()+"-web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Annotations[model.AnnotationInitStatus] != string(model.InitStarted) || d.Labels[model.LabelInitStatus] != string(model.InitStarted) {
			t.Errorf("build %d: init-status annotation %q, label %q, want both started", i, d.Annotations[model.AnnotationInitStatus], d.Labels[model.LabelInitStatus])
		}
		if _, has := d.Labels[model.LabelRepo]; has != (i == 100) {
			t.Errorf("build %d: repo-key label %v, want it only on the build that had it (RunOnce adopts nothing)", i, has)
		}
	}
	// A full pass adopts build 101.
	if err := runner.RunOnce(ctx, renv, initializer.Job{}); err != nil {
		t.Fatal(err)
	}
	d, err = deps.Get(ctx, ref101.Name()+"-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels[model.LabelRepo] != model.RepoKey(ref101.Repo) {
		t.Errorf("after a full pass, build 101's labels %v, want runboat/repo-key %s", d.Labels, model.RepoKey(ref101.Repo))
	}
}
