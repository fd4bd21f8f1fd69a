package console

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/localcluster"
)

// On the local cluster's real node, a demo build whose init fails for real
// (its pod runs the demo's init, which fails as its environment asks): the
// initializer keeps the pod's real log, and the console's init-log
// endpoint serves it. Not parallel: run beside TestBrowser, whose page must
// show a change within 10 s, it made that one miss its time on a loaded
// machine.
func TestE2ERealInitLog(t *testing.T) {
	f := newFixture(t)
	f.env.OnRealNode(t)
	ctx := context.Background()
	kubefiles, err := filepath.Abs(filepath.Join("..", "..", "kubefiles", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := config.NewRepoRule("^acme/", "", config.BuildSettings{
		Image: localcluster.DemoImage, KubefilesPath: kubefiles,
		Env: map[string]string{"RUNBOAT_DEMO_INIT_FAIL": "on purpose"},
	})
	if err != nil {
		t.Fatal(err)
	}
	builds := config.Builds{Repos: config.RepoRules{rule}, Namespace: f.env.Namespace, Domain: testDomain}
	admin, err := kube.NewClients(f.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := model.NewRef("acme/app", "main", 0, sha("real-init"))
	if err != nil {
		t.Fatal(err)
	}
	name, _, err := deploy.New(builds, admin, clock.RealClock{}).Deploy(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	renv, err := runner.NewEnv(runner.Config{
		Builds: builds,
		Quotas: config.Quotas{MaxInitializing: 2, MaxStarted: 6, MaxDeployed: 10},
		GitHub: config.GitHub{DisableCommitStatuses: true, BaseURL: testBase},
		Jobs:   config.Jobs{InitStartTimeout: 5 * time.Minute, CleanupAttempts: 3, CleanupBackoff: time.Minute, OrphanGracePeriod: 10 * time.Minute},
	}, admin, initializer.Name, runner.EnvOptions{Statuses: github.NoopStatusPoster{}, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.RunOnce(ctx, renv, initializer.Job{}); err != nil {
		t.Fatal(err)
	}
	e2e.Wait(t, "the init Job of "+name+" to fail", func(ctx context.Context) (bool, error) {
		j, err := f.env.Client.BatchV1().Jobs(f.env.Namespace).Get(ctx, name+"-initialize", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return j.Status.Failed > 0, nil
	})
	pods, err := f.env.Client.CoreV1().Pods(f.env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name + "-initialize"})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Spec.NodeName != f.env.Cluster.RealNodeName() {
		t.Fatalf("the init pod: %v %v, want one, on the real node", pods, err)
	}
	if err := runner.RunOnce(ctx, renv, initializer.Job{}); err != nil {
		t.Fatal(err)
	}
	f.waitStatus(t, name, model.StatusFailed)

	res := f.do(t, http.MethodGet, "/api/v1/builds/"+name+"/init-log", "").want(t, http.StatusOK, "init log")
	for _, want := range []string{"initializing build " + name + ": acme/app at commit " + ref.Commit, "failing the initialization, as RUNBOAT_DEMO_INIT_FAIL=&#34;on purpose&#34; asks"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("the init log page lacks %q: %s", want, res.body)
		}
	}
}
