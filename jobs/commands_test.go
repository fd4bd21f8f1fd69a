package jobs_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"runboat.dev/shared/jobs/runner"
)

// buildCommands builds the commands of jobs (their names: ./cmd/<name>)
// into dir and returns their paths by name.
func buildCommands(t testing.TB, dir string, jobs ...string) map[string]string {
	t.Helper()
	bins := map[string]string{}
	for _, job := range jobs {
		bin := filepath.Join(dir, job)
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/"+job).CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", job, err, out)
		}
		bins[job] = bin
	}
	return bins
}

// commandEnviron is the environment a job's command gets, as its CronJob
// gives it, for cfg, acting with the kubeconfig file kubeconfig.
func commandEnviron(t testing.TB, cfg runner.Config, kubeconfig string) []string {
	t.Helper()
	repos, err := json.Marshal(cfg.Builds.Repos)
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"KUBECONFIG=" + kubeconfig,
		"RUNBOAT_REPOS=" + string(repos),
		"RUNBOAT_BUILD_NAMESPACE=" + cfg.Builds.Namespace,
		"RUNBOAT_BUILD_DOMAIN=" + cfg.Builds.Domain,
		"RUNBOAT_DISABLE_COMMIT_STATUSES=true",
		fmt.Sprintf("RUNBOAT_MAX_INITIALIZING=%d", cfg.Quotas.MaxInitializing),
		fmt.Sprintf("RUNBOAT_MAX_STARTED=%d", cfg.Quotas.MaxStarted),
		fmt.Sprintf("RUNBOAT_MAX_DEPLOYED=%d", cfg.Quotas.MaxDeployed),
	}
}
