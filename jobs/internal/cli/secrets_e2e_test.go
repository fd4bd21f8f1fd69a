package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// Known secret values: none may appear in what the jobs log or record.
const (
	secretToken    = "ghp_jobsleakTOKEN0123456789"
	secretBuildEnv = "pg-jobsleak-BUILDSECRET-7"
)

// TestE2EJobsNeverLeakSecrets runs the three jobs, at the debug level (the
// configuration is logged), with a GitHub token and a secret build env,
// against a GitHub API that answers every request with an error quoting
// the request's credentials back: neither the jobs' logs nor the Events
// they record hold a secret.
func TestE2EJobsNeverLeakSecrets(t *testing.T) {
	env := e2e.New(t)
	sa := manifests.Install(t, env)
	echoed := make(chan string, 100)
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case echoed <- r.Header.Get("Authorization"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "bad credentials: " + r.Header.Get("Authorization")})
	}))
	defer gh.Close()
	for k, v := range map[string]string{
		"RUNBOAT_REPOS":                   demoRepos(t),
		"RUNBOAT_BUILD_NAMESPACE":         env.Namespace,
		"RUNBOAT_BUILD_DOMAIN":            "runboat.test",
		"RUNBOAT_BUILD_SECRET_ENV":        `{"PGPASSWORD": "` + secretBuildEnv + `"}`,
		"RUNBOAT_GITHUB_TOKEN":            secretToken,
		"RUNBOAT_GITHUB_API_URL":          gh.URL,
		"RUNBOAT_DISABLE_COMMIT_STATUSES": "false",
		"RUNBOAT_MAX_DEPLOYED":            "1",
		"RUNBOAT_CLEANUP_BACKOFF":         "1s",
		kube.KubeconfigDataEnv:            kubeconfig(t, sa),
	} {
		t.Setenv(k, v)
	}
	var cfg runner.Config
	if err := config.Load(config.Environ(), &cfg); err != nil {
		t.Fatal(err)
	}
	clients, err := kube.NewClients(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	deployer := deploy.New(cfg.Builds, clients, clock.RealClock{})
	for i, sha := range []string{strings.Repeat("c", 40), strings.Repeat("d", 40)} {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // the second the newest
		}
		ref, err := model.NewRef("acme/app", "main", 0, sha)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := deployer.Deploy(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
	}

	var logs strings.Builder
	runAll := func() {
		for _, job := range []runner.Job{initializer.Job{}, stopper.Job{}, undeployer.Job{}} {
			var r jobRun
			if err := run(context.Background(), job, runner.Options{}, "debug", &r.log, &r.out); err != nil {
				t.Fatalf("%s: %v\n%s", job.Name(), err, r.log.String())
			}
			logs.WriteString(r.log.String())
		}
	}
	// Until the builds' init Jobs are done (statuses posted, and failing)
	// and the older build undeployed (over MAX_DEPLOYED).
	poll(t, "the builds initialized and the older one undeployed", 2*time.Minute, func() bool {
		runAll()
		d, err := env.Client.AppsV1().Deployments(env.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: model.LabelBuild})
		if err != nil {
			t.Fatal(err)
		}
		return len(d.Items) == 1 && d.Items[0].Annotations[model.AnnotationInitStatus] == string(model.InitSucceeded)
	})
	select {
	case auth := <-echoed:
		if !strings.Contains(auth, secretToken) {
			t.Fatalf("the jobs called GitHub with %q, not the token: the check checks nothing", auth)
		}
	default:
		t.Fatal("the jobs never called GitHub: the check checks nothing")
	}
	if !strings.Contains(logs.String(), "commit status not posted") {
		t.Errorf("no failed commit status in the jobs' log: the echo was not logged\n%s", logs.String())
	}
	env.NoSecretIn(t, []string{secretToken, secretBuildEnv}, map[string]string{"the jobs' log": logs.String()})
}
