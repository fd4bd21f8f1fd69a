package jobs_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/quota"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/invariants"
	"runboat.dev/shared/testenv/manifests"
)

// demoKubefiles is the demo kubefiles folder, from this module's folder.
const demoKubefiles = "../kubefiles/demo"

// image is the build image of the tests (no container runs on the local
// cluster).
const image = "docker.io/library/busybox:1.37"

// rule is a repository rule of the demo kubefiles for the repositories
// matching repo, with template vars (the kwok pod annotations).
func rule(repo string, vars map[string]string) config.RepoRule {
	return config.MustRepoRule(repo, ".*", config.BuildSettings{
		Image:         image,
		KubefilesPath: demoKubefiles,
		TemplateVars:  vars,
	})
}

// harness is a test namespace with the jobs' configuration, the jobs acting
// as the ServiceAccount of the manifests, and what the webhook and the
// console do, as the admin.
type harness struct {
	t   *testing.T
	e   *e2e.Env
	cfg runner.Config
	// jobs is the client configuration of the jobs: the manifests'
	// ServiceAccount.
	jobs     *rest.Config
	deployer *deploy.Deployer
	console  *ops.Ops
	meta     metadata.Interface
	dyn      dynamic.Interface
	logger   zerolog.Logger
	// lease is the Lease duration of the jobs' runs: 3 s by default, so
	// that a run a test kills blocks the next ones only that long.
	lease time.Duration
}

func newHarness(t *testing.T, q config.Quotas, rules ...config.RepoRule) *harness {
	t.Helper()
	return newHarnessOn(t, e2e.New(t), q, rules...)
}

// newHarnessOn is newHarness in the test namespace e.
func newHarnessOn(t *testing.T, e *e2e.Env, q config.Quotas, rules ...config.RepoRule) *harness {
	t.Helper()
	h := &harness{t: t, e: e, logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()}
	h.cfg = runner.Config{
		Builds: config.Builds{Repos: rules, Namespace: e.Namespace, Domain: "runboat.test"},
		Quotas: q,
		GitHub: config.GitHub{DisableCommitStatuses: true, BaseURL: "http://runboat.test"},
		Cleanup: config.Cleanup{
			DeploymentResourceTypes: config.ResourceTypes{"deployment", "service", "ingress", "configmap", "secret", "pvc", "job"},
		},
		Jobs: config.Jobs{
			InitStartTimeout:  5 * time.Minute,
			CleanupAttempts:   3,
			CleanupBackoff:    time.Second,
			OrphanGracePeriod: 10 * time.Minute,
		},
	}
	for _, err := range []error{h.cfg.Builds.Validate(), h.cfg.Quotas.Validate(), h.cfg.Cleanup.Validate(), h.cfg.Jobs.Validate()} {
		if err != nil {
			t.Fatalf("test configuration: %v", err)
		}
	}
	// The jobs act as the manifests' ServiceAccount, with only its token.
	h.jobs = manifests.Install(t, e)
	if h.jobs.CertData != nil || h.jobs.KeyData != nil || h.jobs.BearerToken == "" {
		t.Fatal("the jobs' client configuration is not the ServiceAccount's token alone")
	}
	clients, err := kube.NewClients(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	h.dyn = clients.Dynamic
	h.meta = clients.Metadata
	h.deployer = deploy.New(h.cfg.Builds, clients, clock.RealClock{})
	h.console, err = ops.New(ops.Options{
		Clients: clients, Builds: h.cfg.Builds,
		Events: ops.NewRecorder(clients.Typed, "console", "e2e", nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) ctx() context.Context {
	return logging.Into(context.Background(), h.logger)
}

// env returns the Env of a job acting as the ServiceAccount, with rc's
// transport wrapped when wrap is not nil.
func (h *harness) env(job string, wrap func(http.RoundTripper) http.RoundTripper, mods ...func(*runner.EnvOptions)) *runner.Env {
	h.t.Helper()
	rc := rest.CopyConfig(h.jobs)
	if wrap != nil {
		rc.Wrap(wrap)
	}
	opts := runner.EnvOptions{Statuses: github.NoopStatusPoster{}, Out: io.Discard, LeaseDuration: cmp.Or(h.lease, 3*time.Second)}
	for _, m := range mods {
		m(&opts)
	}
	clients, err := kube.NewClients(rc)
	if err != nil {
		h.t.Fatal(err)
	}
	env, err := runner.NewEnv(h.cfg, clients, job, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return env
}

// checker samples the test's namespace, holding the init Jobs to
// maxInitializing (the harness's quota, or less to catch a job that
// exceeds it); it reports when the test ends, failing it on any breach.
func (h *harness) checker(maxInitializing int) *invariants.Checker {
	h.t.Helper()
	c, err := invariants.New(h.e.Config, h.e.Namespace, maxInitializing)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// watch samples with c every 100 ms until the test ends, then fails it
// on any breach seen.
func (h *harness) watch(c *invariants.Checker) {
	stop := c.Start(context.Background(), 100*time.Millisecond)
	h.t.Cleanup(func() {
		r := stop()
		h.t.Logf("invariants: %d samples", r.Samples)
		if len(r.Breaches) > 0 {
			h.t.Errorf("invariants broken: %s", r)
		}
	})
}

// run runs one pass of job as the ServiceAccount; it must succeed.
func (h *harness) run(job runner.Job) {
	h.t.Helper()
	if err := runner.Run(h.ctx(), h.env(job.Name(), nil), job, runner.Options{}); err != nil {
		h.t.Fatalf("%s: %v", job.Name(), err)
	}
}

// sha is a commit sha made of n.
func sha(n int) string { return fmt.Sprintf("%040x", 0xc0ffee000+n) }

// deploy deploys a build as the webhook does, and returns its name.
func (h *harness) deploy(repo, branch string, pr, commit int) string {
	h.t.Helper()
	ref, err := model.NewRef(repo, branch, pr, sha(commit))
	if err != nil {
		h.t.Fatal(err)
	}
	name, created, err := h.deployer.Deploy(h.ctx(), ref)
	if err != nil || !created {
		h.t.Fatalf("deploy %+v: created %v, %v", ref, created, err)
	}
	return name
}

// builds reads the builds, as the admin.
func (h *harness) builds() map[string]model.Build {
	h.t.Helper()
	list, err := h.e.Client.AppsV1().Deployments(h.e.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: runner.BuildSelector().String()})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]model.Build{}
	for i := range list.Items {
		b, err := model.FromDeployment(&list.Items[i])
		if err != nil {
			h.t.Fatal(err)
		}
		out[b.Name] = b
	}
	return out
}

// counts counts builds against the quotas as the jobs and the console do,
// reading the init Jobs quota.Count needs.
func (h *harness) counts(builds map[string]model.Build) quota.Counts {
	h.t.Helper()
	initJobs := map[string][]batchv1.Job{}
	for name, b := range builds {
		if quota.NeedsInitJobs(b) {
			initJobs[name] = h.jobsOf(model.JobInitialize, name)
		}
	}
	return quota.Count(maps.Values(builds), initJobs)
}

// ask has the console run op on the build name, as a person asks for it
// (op is (*ops.Ops).Start, Stop, Reset or Undeploy), and reports whether
// it changed anything.
func (h *harness) ask(name string, op func(*ops.Ops, context.Context, *appsv1.Deployment, string) (bool, error)) bool {
	h.t.Helper()
	changed, err := h.console.Do(h.ctx(), name, func(ctx context.Context, d *appsv1.Deployment) (bool, error) {
		return op(h.console, ctx, d, "asked in the test")
	})
	if err != nil {
		h.t.Fatalf("build %s: %v", name, err)
	}
	return changed
}

func (h *harness) deployment(name string) *appsv1.Deployment {
	h.t.Helper()
	d, err := h.console.Get(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// jobsOf lists the Jobs of a kind (all builds when name is empty).
func (h *harness) jobsOf(kind model.JobKind, name string) []batchv1.Job {
	h.t.Helper()
	set := labels.Set{model.LabelJobKind: string(kind)}
	if name != "" {
		set[model.LabelBuild] = name
	}
	list, err := h.e.Client.BatchV1().Jobs(h.e.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: set.String()})
	if err != nil {
		h.t.Fatal(err)
	}
	return list.Items
}

// runningInitJobs counts the init Jobs not finished and not being deleted.
func (h *harness) runningInitJobs() int {
	n := 0
	for _, j := range h.jobsOf(model.JobInitialize, "") {
		if j.DeletionTimestamp == nil && !finished(j) {
			n++
		}
	}
	return n
}

func finished(j batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// labelledKinds are the kinds a build's objects may be of on the local
// cluster, dependents included.
var labelledKinds = append([]schema.GroupVersionResource{{Group: "apps", Version: "v1", Resource: "deployments"}}, invariants.Labelled...)

// leftovers lists the objects labelled with the build, of every kind.
func (h *harness) leftovers(name string) []string {
	h.t.Helper()
	var out []string
	for _, r := range labelledKinds {
		list, err := h.meta.Resource(r).Namespace(h.e.Namespace).List(context.Background(), metav1.ListOptions{
			LabelSelector: labels.Set{model.LabelBuild: name}.String(),
		})
		if err != nil {
			h.t.Fatal(err)
		}
		for _, o := range list.Items {
			out = append(out, r.Resource+"/"+o.Name)
		}
	}
	return out
}

// eventReasons are the reasons of the Events about a Deployment.
func (h *harness) eventReasons(deployment string) []string {
	h.t.Helper()
	list, err := h.e.Client.CoreV1().Events(h.e.Namespace).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Deployment,involvedObject.name=" + deployment,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// waitFor polls cond until it holds, for at most timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// killer is a RoundTripper that lets n writes through, then cancels the
// run's context and fails every request: a process killed in the middle of
// its pass (its Lease is not released either).
type killer struct {
	next   http.RoundTripper
	left   atomic.Int64
	cancel context.CancelFunc
	once   sync.Once
}

func (k *killer) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.left.Load() <= 0 {
		k.once.Do(k.cancel)
		return nil, fmt.Errorf("killed")
	}
	if r.Method != http.MethodGet {
		if k.left.Add(-1) < 0 {
			k.once.Do(k.cancel)
			return nil, fmt.Errorf("killed")
		}
	}
	return k.next.RoundTrip(r)
}

// counter counts the requests sent.
type counter struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// until runs a pass of each job, in order, until cond holds of the builds,
// for at most timeout.
func (h *harness) until(what string, timeout time.Duration, jobs []runner.Job, cond func(map[string]model.Build) bool) map[string]model.Build {
	h.t.Helper()
	var last map[string]model.Build
	waitFor(h.t, what, timeout, func(context.Context) (bool, error) {
		for _, j := range jobs {
			h.run(j)
		}
		last = h.builds()
		return cond(last), nil
	})
	return last
}

// waitLeaseHeld waits until a run holds the Lease of job.
func (h *harness) waitLeaseHeld(job runner.Job) {
	h.t.Helper()
	waitFor(h.t, "a run of "+job.Name()+" to hold its Lease", time.Minute, func(ctx context.Context) (bool, error) {
		l, err := h.e.Client.CoordinationV1().Leases(h.e.Namespace).Get(ctx, runner.LeaseName(job), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && ptr.Deref(l.Spec.HolderIdentity, "") != "", err
	})
}

// waitLeaseFree waits until nobody holds the Lease of job, or it expired.
func (h *harness) waitLeaseFree(job runner.Job) {
	h.t.Helper()
	waitFor(h.t, "the lease of "+job.Name()+" to be free", time.Minute, func(ctx context.Context) (bool, error) {
		l, err := h.e.Client.CoordinationV1().Leases(h.e.Namespace).Get(ctx, runner.LeaseName(job), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			return true, nil
		}
		end := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
		return time.Now().After(end.Add(100 * time.Millisecond)), nil
	})
}
