package cli

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/jobs/reconciler"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/githubdouble"
	"runboat.dev/shared/testenv/manifests"
)

// The reconciler's binary, configured by the environment as its CronJob
// configures it and acting as its ServiceAccount: during a GitHub outage it
// exits 1 and changes nothing; once GitHub answers, it exits 0, having
// undeployed the build of the branch GitHub no longer has.
func TestE2EReconcilerExitCodes(t *testing.T) {
	env := e2e.New(t)
	manifests.Install(t, env)
	sa := manifests.ReconcilerConfig(t, env)
	gh := githubdouble.New(t)
	for k, v := range map[string]string{
		"RUNBOAT_REPOS":                   demoRepos(t),
		"RUNBOAT_BUILD_NAMESPACE":         env.Namespace,
		"RUNBOAT_BUILD_DOMAIN":            "runboat.test",
		"RUNBOAT_DISABLE_COMMIT_STATUSES": "true",
		"RUNBOAT_GITHUB_API_URL":          gh.APIURL(),
		kube.KubeconfigDataEnv:            kubeconfig(t, sa),
	} {
		t.Setenv(k, v)
	}
	var cfg runner.Config
	if err := config.Load(config.Environ(), &cfg); err != nil {
		t.Fatal(err)
	}
	admin, err := kube.NewClients(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := model.NewRef("acme/app", "gone", 0, strings.Repeat("a", 40))
	if err != nil {
		t.Fatal(err)
	}
	name, _, err := deploy.New(cfg.Builds, admin, clock.RealClock{}).Deploy(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	d := deploymentOf(t, env, name)

	gh.Outage(http.StatusServiceUnavailable)
	if code := Main(reconciler.Job{}, nil); code != 1 {
		t.Fatalf("during an outage: exit %d, want 1", code)
	}
	if currentOf(t, env, d).DeletionTimestamp != nil {
		t.Fatal("a build was undeployed during an outage")
	}
	gh.Outage(0)
	if code := Main(reconciler.Job{}, nil); code != 0 {
		t.Fatalf("after the outage: exit %d, want 0", code)
	}
	if currentOf(t, env, d).DeletionTimestamp == nil {
		t.Error("the build of a branch GitHub no longer has was not undeployed")
	}
}
