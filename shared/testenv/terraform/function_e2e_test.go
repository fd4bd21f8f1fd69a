package terraform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"runboat.dev/shared/github"
	"runboat.dev/shared/model"
	"runboat.dev/shared/release"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/githubdouble"
)

// projectRoot is the root of the project, from this package's folder.
func projectRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// localFunction is the function's packaged bootstrap, serving HTTP with
// exactly the kubeconfig terraform made.
type localFunction struct {
	url    string
	secret []byte
	logs   *bytes.Buffer
}

const (
	localSecret = "terraform-local-secret"
	localAdmin  = "admin"
	localPasswd = "admin-pw"
)

// localRepos is RUNBOAT_REPOS for the deliveries of GitHub's example
// payloads (Codertocat/Hello-World) on the demo kubefiles.
func localRepos(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal([]map[string]any{{
		"repo": "^codertocat/hello-world$", "branch": ".*",
		"builds": []map[string]any{{"image": "busybox:1.36", "kubefiles_path": filepath.Join(projectRoot(t), "kubefiles", "demo")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startLocalFunction builds the function as `make package` does, takes its
// bootstrap out of the zip and starts it with --listen, its only cluster
// credential the kubeconfig given (RUNBOAT_KUBECONFIG_DATA, as on Lambda).
func startLocalFunction(t *testing.T, kubeconfig, ns string) *localFunction {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := release.BuildFunction(ctx, projectRoot(t), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	zip, err := release.FunctionZip(bin)
	if err != nil {
		t.Fatal(err)
	}
	bootstrap, _, err := release.ZipBootstrap(zip)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), release.BootstrapName)
	if err := os.WriteFile(path, bootstrap, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fn := &localFunction{url: "http://" + addr, secret: []byte(localSecret), logs: &bytes.Buffer{}}
	cmd := exec.Command(path, "--listen", addr)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(), // no ~/.kube/config to fall back on
		"RUNBOAT_KUBECONFIG_DATA=" + kubeconfig,
		"RUNBOAT_REPOS=" + localRepos(t),
		"RUNBOAT_BUILD_NAMESPACE=" + ns,
		"RUNBOAT_BUILD_DOMAIN=builds.example.org",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET=" + localSecret,
		"RUNBOAT_DISABLE_COMMIT_STATUSES=true",
		"RUNBOAT_API_ADMIN_USER=" + localAdmin,
		"RUNBOAT_API_ADMIN_PASSWD=" + localPasswd,
	}
	cmd.Stdout, cmd.Stderr = fn.logs, fn.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("function log:\n%s", fn.logs.String())
		}
	})
	e2e.Wait(t, "the function to serve", func(ctx context.Context) (bool, error) {
		code, _, err := fn.do(ctx, http.MethodGet, "/api/v1/status", nil, nil)
		return err == nil && code == http.StatusOK, nil
	})
	return fn
}

func (f *localFunction) do(ctx context.Context, method, path string, body []byte, header http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// checkFunction runs the function with the credential terraform made: a
// signed push delivery makes its build, the function's initializer pass
// launches its init Job, and once the build is initialized (marked here,
// as the initializer's CronJob would) the console starts it. It answers
// the build.
func checkFunction(t *testing.T, env *e2e.Env, fn *localFunction, ns string) *model.Ref {
	ctx := context.Background()
	payload, err := os.ReadFile(filepath.Join(projectRoot(t), "functions", "webhook", "testdata", "push.branch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var push struct {
		After string `json:"after"`
		Ref   string `json:"ref"`
	}
	if err := json.Unmarshal(payload, &push); err != nil {
		t.Fatal(err)
	}
	header := http.Header{
		"Content-Type":         {"application/json"},
		github.HeaderEvent:     {"push"},
		github.HeaderDelivery:  {"terraform-local-1"},
		github.HeaderSignature: {github.Signature(payload, fn.secret)},
	}
	bad := header.Clone()
	bad.Set(github.HeaderSignature, github.Signature(payload, []byte("not-the-secret")))
	if code, body, err := fn.do(ctx, http.MethodPost, "/webhooks/github", payload, bad); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("a delivery with a wrong signature: %d %s %v, want 401", code, body, err)
	}
	if code, body, err := fn.do(ctx, http.MethodPost, "/webhooks/github", payload, header); err != nil || code != http.StatusCreated {
		t.Fatalf("a signed push: %d %s %v, want 201", code, body, err)
	}
	ref, err := model.NewRef("Codertocat/Hello-World", strings.TrimPrefix(push.Ref, "refs/heads/"), 0, push.After)
	if err != nil {
		t.Fatal(err)
	}
	deps := env.Client.AppsV1().Deployments(ns)
	name := ref.Name() + "-web"
	e2e.Wait(t, "the function's pass to launch the init Job", func(ctx context.Context) (bool, error) {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Annotations[model.AnnotationInitStatus] == string(model.InitStarted), nil
	})
	// What the initializer's CronJob does when the init Job succeeds.
	d, err := deps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Annotations[model.AnnotationInitStatus] = string(model.InitSucceeded)
	d.Labels[model.LabelInitStatus] = string(model.InitSucceeded)
	if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	admin := http.Header{"Authorization": {"Basic " + basicAuth(localAdmin, localPasswd)}}
	path := fmt.Sprintf("/api/v1/builds/%s/start", ref.Name())
	if code, body, err := fn.do(ctx, http.MethodPost, path, nil, admin); err != nil || code/100 != 2 {
		t.Fatalf("POST %s: %d %s %v, want 2xx", path, code, body, err)
	}
	d, err = deps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("after the console's start, replicas %v, want 1", d.Spec.Replicas)
	}
	return &ref
}

func basicAuth(user, passwd string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(user, passwd)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// checkJobsImage takes the jobs' binaries out of their image (the OCI image
// `make package` writes, made by the same code) and runs each for a
// --dry-run pass against ns: each exits 0 and prints its plan. Then the
// build the function made is undeployed through the console, and the
// undeployer from the image, run as its CronJob would be, cleans it up
// until it is gone.
func checkJobsImage(t *testing.T, env *e2e.Env, fn *localFunction, build *model.Ref, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bins := jobsFromImage(ctx, t)
	// The reconciler reads GitHub: its double, where the sample
	// repository's branch has moved on.
	gh := githubdouble.New(t)
	gh.SetBranch("codertocat/hello-world", "master", strings.Repeat("f", 40))
	run := func(job string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bins[job], args...)
		cmd.Env = []string{
			"KUBECONFIG=" + env.Cluster.Kubeconfig(),
			"RUNBOAT_REPOS=" + localRepos(t),
			"RUNBOAT_BUILD_NAMESPACE=" + ns,
			"RUNBOAT_BUILD_DOMAIN=builds.example.org",
			"RUNBOAT_DISABLE_COMMIT_STATUSES=true",
			"RUNBOAT_GITHUB_API_URL=" + gh.APIURL(),
		}
		var out, logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &logs
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("%s %s: %w\n%s", job, strings.Join(args, " "), err, logs.String())
		}
		return out.String(), nil
	}
	for _, job := range release.JobCommands {
		out, err := run(job, "--dry-run")
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("%s --dry-run:\n%s", job, out)
	}
	if build == nil {
		t.Fatal("no build to undeploy: the function's check did not make one")
	}

	admin := http.Header{"Authorization": {"Basic " + basicAuth(localAdmin, localPasswd)}}
	path := "/api/v1/builds/" + build.Name()
	if code, body, err := fn.do(ctx, http.MethodDelete, path, nil, admin); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s %v, want 200", path, code, body, err)
	}
	deps := env.Client.AppsV1().Deployments(ns)
	e2e.Wait(t, "the undeployer to remove the build", func(ctx context.Context) (bool, error) {
		if _, err := run("undeployer"); err != nil {
			return false, err
		}
		_, err := deps.Get(ctx, build.Name()+"-web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	// Nothing labelled with the build is left.
	sel := metav1.ListOptions{LabelSelector: model.LabelBuild + "=" + build.Name()}
	svcs, err := env.Client.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := env.Client.BatchV1().Jobs(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(svcs.Items) + len(jobs.Items); n > 0 {
		t.Errorf("after the undeploy, %d Services and %d Jobs of the build are left", len(svcs.Items), len(jobs.Items))
	}
}

// jobsFromImage builds the jobs' image for this machine's architecture and
// writes each job's binary, taken out of the image, into a folder of the
// test; it answers their paths by job.
func jobsFromImage(ctx context.Context, t *testing.T) map[string]string {
	t.Helper()
	bins, err := release.BuildJobs(ctx, projectRoot(t), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := release.JobsIndex(map[string]map[string][]byte{runtime.GOARCH: bins})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ociTar := filepath.Join(dir, "runboat-jobs.oci.tar")
	f, err := os.Create(ociTar)
	if err != nil {
		t.Fatal(err)
	}
	if err := release.WriteOCITar(f, idx); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, job := range release.JobCommands {
		data, _, err := release.ExtractFile(ociTar, "linux/"+runtime.GOARCH, "/"+job)
		if err != nil {
			t.Fatal(err)
		}
		paths[job] = filepath.Join(dir, job)
		if err := os.WriteFile(paths[job], data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}
