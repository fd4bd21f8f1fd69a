package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
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

// kubeconfig is the kubeconfig of cfg: its server, CA and bearer token.
func kubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
		CertificateAuthority:     cfg.CAFile,
		InsecureSkipTLSVerify:    cfg.Insecure,
	}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// jobRun is one run of a job binary's code (run, as Main calls it): its
// log and its dry-run output.
type jobRun struct {
	log, out bytes.Buffer
}

// lines decodes the run's log.
func (r *jobRun) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(r.log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// has tells whether the run logged message with these fields.
func (r *jobRun) has(t *testing.T, message string, fields map[string]string) bool {
	t.Helper()
next:
	for _, l := range r.lines(t) {
		if l["message"] != message {
			continue
		}
		for k, v := range fields {
			if l[k] != v {
				continue next
			}
		}
		return true
	}
	return false
}

// runJob runs job as the binary does, configured by the environment, and
// wants it to succeed.
func runJob(t *testing.T, job runner.Job) *jobRun {
	t.Helper()
	var r jobRun
	if err := run(context.Background(), job, runner.Options{}, "info", &r.log, &r.out); err != nil {
		t.Fatalf("%s: %v\n%s", job.Name(), err, r.log.String())
	}
	return &r
}

// demoRepos is a RUNBOAT_REPOS of acme/app, any branch, on the demo
// kubefiles.
func demoRepos(t *testing.T) string {
	t.Helper()
	kubefiles, err := filepath.Abs(filepath.Join("..", "..", "..", "kubefiles", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	repos, err := json.Marshal([]map[string]any{{
		"repo": "^acme/app$", "branch": ".*",
		"builds": []map[string]any{{"image": "docker.io/library/busybox:1.37", "kubefiles_path": kubefiles}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return string(repos)
}

// The three job binaries, configured by the environment as the CronJobs
// configure them and acting as the manifests' ServiceAccount: their lines
// reach their output with the job's name, and the API server holds their
// Events, each reported by its job with an instance.
func TestE2EJobsLogAndRecordEvents(t *testing.T) {
	env := e2e.New(t)
	sa := manifests.Install(t, env)
	repos := demoRepos(t)
	vars := map[string]string{
		"RUNBOAT_REPOS":                   repos,
		"RUNBOAT_BUILD_NAMESPACE":         env.Namespace,
		"RUNBOAT_BUILD_DOMAIN":            "runboat.test",
		"RUNBOAT_DISABLE_COMMIT_STATUSES": "true",
		"RUNBOAT_MAX_INITIALIZING":        "2",
		"RUNBOAT_MAX_STARTED":             "1",
		"RUNBOAT_MAX_DEPLOYED":            "1",
		"RUNBOAT_CLEANUP_BACKOFF":         "1s",
		kube.KubeconfigDataEnv:            kubeconfig(t, sa),
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	var cfg runner.Config
	if err := config.Load(config.Environ(), &cfg); err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	// Two builds of one branch, made as the webhook makes them, one second
	// apart so that the second is the newest of the branch.
	clients, err := kube.NewClients(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	deployer := deploy.New(cfg.Builds, clients, clock.RealClock{})
	var deps []*appsv1.Deployment
	for i, sha := range []string{strings.Repeat("a", 40), strings.Repeat("b", 40)} {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond)
		}
		ref, err := model.NewRef("acme/app", "main", 0, sha)
		if err != nil {
			t.Fatal(err)
		}
		name, created, err := deployer.Deploy(context.Background(), ref)
		if err != nil || !created {
			t.Fatalf("deploy %s: created %v, %v", sha, created, err)
		}
		deps = append(deps, deploymentOf(t, env, name))
	}
	older, newer := deps[0], deps[1]

	// check waits for an Event of job's about d and checks its instance.
	check := func(d *appsv1.Deployment, job, reason string) {
		t.Helper()
		ev := env.WaitForEvent(t, d, "runboat.dev/"+job, reason, 30*time.Second)
		if !strings.HasPrefix(ev.ReportingInstance, host+"-") {
			t.Errorf("Event %s of %s: reportingInstance %q, want the host name %s and a suffix", reason, job, ev.ReportingInstance, host)
		}
	}

	r := runJob(t, initializer.Job{})
	for _, d := range deps {
		name := d.Labels[model.LabelBuild]
		if !r.has(t, "init Job launched", map[string]string{"job": initializer.Name, "build": name}) {
			t.Errorf("the initializer's output has no launch of %s:\n%s", name, r.log.String())
		}
		check(d, initializer.Name, "Initializing")
	}
	// kwok completes the init Jobs; the initializer reads their outcome.
	poll(t, "both builds initialized", 2*time.Minute, func() bool {
		runJob(t, initializer.Job{})
		for _, d := range deps {
			if currentOf(t, env, d).Annotations[model.AnnotationInitStatus] != string(model.InitSucceeded) {
				return false
			}
		}
		return true
	})
	for _, d := range deps {
		check(d, initializer.Name, "Initialized")
	}

	// Both started, the older one first: over MAX_STARTED, the stopper
	// stops it.
	for i, d := range deps {
		scaled := model.FormatTime(time.Now().Add(time.Duration(i-10) * time.Minute))
		patch := []byte(`{"spec":{"replicas":1},"metadata":{"annotations":{"` + model.AnnotationLastScaled + `":"` + scaled + `"}}}`)
		if _, err := env.Client.AppsV1().Deployments(env.Namespace).Patch(context.Background(), d.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r = runJob(t, stopper.Job{})
	if !r.has(t, "build stopped", map[string]string{"job": stopper.Name, "build": older.Labels[model.LabelBuild]}) {
		t.Errorf("the stopper's output has no stop of %s:\n%s", older.Labels[model.LabelBuild], r.log.String())
	}
	check(older, stopper.Name, "Stopped")

	// Over MAX_DEPLOYED, the undeployer undeploys the stopped older build,
	// runs its cleanup Job and, once it succeeded, deletes it.
	var logs strings.Builder
	poll(t, "the older build undeployed", 2*time.Minute, func() bool {
		r := runJob(t, undeployer.Job{})
		logs.WriteString(r.log.String())
		_, err := env.Client.AppsV1().Deployments(env.Namespace).Get(context.Background(), older.Name, metav1.GetOptions{})
		return err != nil
	})
	for _, reason := range []string{"Undeploying", "CleaningUp", "Undeployed"} {
		check(older, undeployer.Name, reason)
	}
	if !strings.Contains(logs.String(), `"message":"cleanup Job launched"`) || !strings.Contains(logs.String(), `"job":"undeployer"`) {
		t.Errorf("the undeployer's output has no launch of the cleanup Job:\n%s", logs.String())
	}
	if _, err := env.Client.AppsV1().Deployments(env.Namespace).Get(context.Background(), newer.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the newest build of the branch: %v", err)
	}
}

func deploymentOf(t *testing.T, env *e2e.Env, build string) *appsv1.Deployment {
	t.Helper()
	list, err := env.Client.AppsV1().Deployments(env.Namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.Set{model.LabelBuild: build}.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("build %s has %d Deployments, want 1", build, len(list.Items))
	}
	return &list.Items[0]
}

func currentOf(t *testing.T, env *e2e.Env, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	cur, err := env.Client.AppsV1().Deployments(env.Namespace).Get(context.Background(), d.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

// poll calls cond every half second until it holds, for at most timeout.
func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
