package console

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"runboat.dev/functions/internal/testutil"
	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

const (
	testUser   = "admin"
	testPasswd = "s3cret-admin-passwd"
	testDomain = "builds.example.test"
	testBase   = "https://runboat.example.test"
)

// recordingOps records the operations asked of the real ones.
type recordingOps struct {
	ops Operations

	mu    sync.Mutex
	calls []string
}

var _ Operations = (*recordingOps)(nil)

func (o *recordingOps) record(op, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, op+" "+name)
}

// Calls returns the calls made, as "op name".
func (o *recordingOps) Calls() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.calls...)
}

func (o *recordingOps) Start(ctx context.Context, name string) error {
	o.record("start", name)
	return o.ops.Start(ctx, name)
}

func (o *recordingOps) Stop(ctx context.Context, name string) error {
	o.record("stop", name)
	return o.ops.Stop(ctx, name)
}

func (o *recordingOps) Reset(ctx context.Context, name string) error {
	o.record("reset", name)
	return o.ops.Reset(ctx, name)
}

func (o *recordingOps) Undeploy(ctx context.Context, name string) error {
	o.record("undeploy", name)
	return o.ops.Undeploy(ctx, name)
}

// nopOps is the Operations of the tests without a cluster.
type nopOps struct{}

func (nopOps) Start(context.Context, string) error    { return nil }
func (nopOps) Stop(context.Context, string) error     { return nil }
func (nopOps) Reset(context.Context, string) error    { return nil }
func (nopOps) Undeploy(context.Context, string) error { return nil }

// nopDeployer is the Deployer of the tests that do not trigger.
type nopDeployer struct{}

func (nopDeployer) Deploy(context.Context, model.Ref) (string, bool, error) {
	return "", false, errors.New("nopDeployer deploys nothing")
}

// testBuilds is the configuration of the builds of the tests: the demo
// kubefiles for the repositories of the tests (not for unsupported/*).
func testBuilds(t *testing.T, namespace string) config.Builds {
	t.Helper()
	kubefiles, err := filepath.Abs(filepath.Join("..", "..", "kubefiles", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := config.NewRepoRule("^(acme|other|gone|nobody)/", "", config.BuildSettings{Image: "busybox:1.36", KubefilesPath: kubefiles})
	if err != nil {
		t.Fatal(err)
	}
	return config.Builds{Repos: config.RepoRules{rule}, Namespace: namespace, Domain: testDomain}
}

// fixture is a console on a test namespace of the local cluster, with the
// real deployer and build operations, acting as the function's
// ServiceAccount with only its token (the test's setup acts as admin,
// through env).
type fixture struct {
	env      *e2e.Env
	ops      *recordingOps
	deployer *deploy.Deployer
	clock    *clocktesting.FakePassiveClock
	h        *Handler
	srv      *httptest.Server
	log      *testutil.SyncBuffer
	opts     Options
}

// newFixture starts a console on a fresh namespace; mutate changes its
// options before it is made.
func newFixture(t *testing.T, mutate ...func(*Options)) *fixture {
	t.Helper()
	env := e2e.New(t)
	builds := testBuilds(t, env.Namespace)
	clients, err := kube.NewClients(manifests.InstallFunction(t, env))
	if err != nil {
		t.Fatal(err)
	}
	o, err := ops.New(ops.Options{Clients: clients, Builds: builds})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		env:      env,
		ops:      &recordingOps{ops: FromOps(o)},
		deployer: deploy.New(builds, clients, clock.RealClock{}),
		clock:    clocktesting.NewFakePassiveClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		log:      &testutil.SyncBuffer{},
	}
	f.opts = Options{
		Client:      clients.Typed,
		Namespace:   env.Namespace,
		Ops:         f.ops,
		Deployer:    f.deployer,
		Quotas:      config.Quotas{MaxInitializing: 2, MaxStarted: 6, MaxDeployed: 10},
		BaseURL:     testBase,
		BuildDomain: testDomain,
		AdminUser:   testUser,
		AdminPasswd: testPasswd,
		Clock:       f.clock,
		Logger:      zerolog.New(f.log),
	}
	for _, m := range mutate {
		m(&f.opts)
	}
	h, err := New(f.opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.h = h
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// spec describes a build to create.
type spec struct {
	repo, branch string
	pr           int
	commit       string
	init         model.InitStatus
	replicas     int32
	reason       string // init failure reason
	initLog      string // the init log evidence of a failed build
	lastReset    string
	container    string // of createRawBuild's pod; "web" when empty
	node         string // where createRawBuild's pod runs; any node when empty
}

// sha returns a valid commit sha made from seed.
func sha(seed string) string {
	sum := sha1.Sum([]byte(seed))
	return hex.EncodeToString(sum[:])
}

// createBuild deploys a build with the real deployer, then plays the
// initializer: it sets the init status (succeeded by default), the failure
// reason and its init log evidence, and the replicas.
func (f *fixture) createBuild(t *testing.T, s spec) model.Ref {
	t.Helper()
	ref := s.ref(t)
	ctx := context.Background()
	name, created, err := f.deployer.Deploy(ctx, ref)
	if err != nil || !created || name != ref.Name() {
		t.Fatalf("failed to deploy build %s: %s, created %t, %v", ref.Name(), name, created, err)
	}
	annotations := map[string]any{model.AnnotationInitStatus: string(s.init)}
	if s.reason != "" {
		annotations[model.AnnotationInitFailure] = s.reason
	}
	if s.lastReset != "" {
		annotations[model.AnnotationLastReset] = s.lastReset
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": annotations},
		"spec":     map[string]any{"replicas": s.replicas},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Client.AppsV1().Deployments(f.env.Namespace).Patch(ctx, f.deploymentName(t, name), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("failed to set the state of build %s: %v", name, err)
	}
	if s.initLog != "" {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: model.InitLogName(name), Labels: map[string]string{model.LabelBuild: name}},
			Data:       map[string]string{model.InitLogKey: s.initLog, model.InitLogReasonKey: s.reason},
		}
		if _, err := f.env.Client.CoreV1().ConfigMaps(f.env.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("failed to create the init log of %s: %v", name, err)
		}
	}
	return ref
}

// ref is the build of a spec, with its defaults.
func (s *spec) ref(t *testing.T) model.Ref {
	t.Helper()
	if s.commit == "" {
		s.commit = sha(s.repo + s.branch + fmt.Sprint(s.pr))
	}
	if s.init == "" {
		s.init = model.InitSucceeded
	}
	ref, err := model.NewRef(s.repo, s.branch, s.pr, s.commit)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// createRawBuild creates the Deployment of a stopped build directly, with
// the contract's labels and annotations: quicker than a deploy, for the
// tests that only read builds.
func (f *fixture) createRawBuild(t *testing.T, s spec) model.Ref {
	t.Helper()
	ref := s.ref(t)
	name := ref.Name()
	labels := map[string]string{model.LabelBuild: name, model.LabelCommit: ref.Commit, model.LabelTarget: ref.TargetKey()}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-web", Labels: labels, Finalizers: []string{model.Finalizer},
			Annotations: map[string]string{
				model.AnnotationRepo:         ref.Repo,
				model.AnnotationTargetBranch: ref.TargetBranch,
				model.AnnotationPR:           ref.PRString(),
				model.AnnotationCommit:       ref.Commit,
				model.AnnotationInitStatus:   string(s.init),
				model.AnnotationLastScaled:   time.Now().UTC().Format(time.RFC3339),
			},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{model.LabelBuild: name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{model.LabelBuild: name}},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					NodeName:                     s.node,
					Containers:                   []corev1.Container{{Name: cmp.Or(s.container, "web"), Image: "busybox"}},
				},
			},
		},
	}
	if _, err := f.env.Client.AppsV1().Deployments(f.env.Namespace).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("failed to create build %s: %v", name, err)
	}
	return ref
}

// deploymentName is the name of the Deployment of a build.
func (f *fixture) deploymentName(t *testing.T, name string) string {
	t.Helper()
	list, err := f.env.Client.AppsV1().Deployments(f.env.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: model.LabelBuild + "=" + name})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("failed to find the Deployment of build %s: %v", name, err)
	}
	return list.Items[0].Name
}

// markUndeploying deletes the Deployment of a build: its finalizer keeps it,
// undeploying.
func (f *fixture) markUndeploying(t *testing.T, name string) {
	t.Helper()
	if err := f.env.Client.AppsV1().Deployments(f.env.Namespace).Delete(context.Background(), f.deploymentName(t, name), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// response is an answer of the console.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends a request to the console; auth is "user:passwd" or "".
func (f *fixture) do(t *testing.T, method, path, auth string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		user, passwd, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(user, passwd)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close() //nolint:errcheck // read to the end below
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: res.StatusCode, header: res.Header, body: string(b)}
}

// want checks the code of a response.
func (r response) want(t *testing.T, code int, what string) response {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: status %d, want %d; body: %s", what, r.code, code, r.body)
	}
	return r
}

// json decodes the body.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body is not the JSON expected (%v): %s", err, r.body)
	}
}

// detail is the reason of an error response.
func (r response) detail(t *testing.T) string {
	t.Helper()
	var e errorJSON
	r.json(t, &e)
	return e.Detail
}

// getBuild reads a build through the API.
func (f *fixture) getBuild(t *testing.T, name string) buildJSON {
	t.Helper()
	var b buildJSON
	f.do(t, http.MethodGet, "/api/v1/builds/"+name, "").want(t, http.StatusOK, "GET build "+name).json(t, &b)
	return b
}

// waitStatus waits until the API tells the build has a status.
func (f *fixture) waitStatus(t *testing.T, name string, want model.Status) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var last model.Status
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		d, err := f.h.getBuild(ctx, name)
		if err != nil {
			return false, err
		}
		last = d.Status
		return last == want, nil
	})
	if err != nil {
		t.Fatalf("waiting for build %s to be %s (last seen %s): %v", name, want, last, err)
	}
}

// startedBuild creates a build and waits until it is started.
func (f *fixture) startedBuild(t *testing.T, s spec) model.Ref {
	t.Helper()
	s.replicas = 1
	ref := f.createBuild(t, s)
	f.waitStatus(t, ref.Name(), model.StatusStarted)
	return ref
}

// wantNull checks that a response is the JSON null, as the Python runboat's
// actions answer.
func wantNull(t *testing.T, what string, r response) {
	t.Helper()
	if strings.TrimSpace(r.body) != "null" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("%s: body %q (%s), want null", what, r.body, r.header.Get("Content-Type"))
	}
}

// replicas returns the replicas asked of the Deployment of a build.
func (f *fixture) replicas(t *testing.T, name string) int32 {
	t.Helper()
	d, err := f.env.Client.AppsV1().Deployments(f.env.Namespace).Get(context.Background(), f.deploymentName(t, name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(d.Spec.Replicas, 0)
}
