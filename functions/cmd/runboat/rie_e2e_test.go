package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"runboat.dev/functions/internal/testutil"
	"runboat.dev/shared/github"
	"runboat.dev/shared/model"
	"runboat.dev/shared/release"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/localcluster"
)

// The function as Lambda runs it: the bootstrap of the zip that make
// package makes, under AWS's runtime interface emulator (the runtime API
// of Lambda's provided runtimes), invoked with function URL events, on the
// local cluster.

// rieModule is the emulator, built from the Go module proxy into the cache
// folder, once per version.
const (
	rieModule  = "github.com/aws/aws-lambda-runtime-interface-emulator"
	rieVersion = "v0.0.0-20261030222936-bef5c4ba774d"
)

// rieInvocations is the emulator's invoke path.
const rieInvocations = "/2015-03-31/functions/function/invocations"

const rieSecret = "rie-s3cret"

// rieBinary returns the emulator's binary, building it on first use.
func rieBinary(t *testing.T) string {
	t.Helper()
	cache, err := localcluster.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "tools", "aws-lambda-rie-"+rieVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	gobin, err := os.MkdirTemp(filepath.Dir(bin), "rie-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(gobin) }()
	t.Logf("building the Lambda runtime interface emulator %s into %s", rieVersion, bin)
	cmd := exec.Command("go", "install", rieModule+"/cmd/aws-lambda-rie@"+rieVersion)
	cmd.Dir = gobin // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("failed to build the emulator: %v\n%s", err, out)
	}
	if err := os.Rename(filepath.Join(gobin, "aws-lambda-rie"), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// packagedBootstrap builds the function's zip for this machine's
// architecture (amd64 on CI) as make package does, and returns the path
// of the bootstrap taken out of it.
func packagedBootstrap(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := release.BuildFunction(ctx, root, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	zip, err := release.FunctionZip(bin)
	if err != nil {
		t.Fatal(err)
	}
	bootstrap, mode, err := release.ZipBootstrap(zip)
	if err != nil {
		t.Fatal(err)
	}
	if mode != 0o755 {
		t.Errorf("bootstrap mode %o in the zip, want 755", mode)
	}
	path := filepath.Join(t.TempDir(), release.BootstrapName)
	if err := os.WriteFile(path, bootstrap, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeAddress returns a local address nothing listens on.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// emulator is the function running under the emulator.
type emulator struct {
	url    string
	output *syncWriter
}

// startEmulator runs bootstrap under the emulator with the function's
// configuration for the namespace of env, and the variables of extraEnv.
func startEmulator(t *testing.T, bootstrap string, env *e2e.Env, extraEnv ...string) *emulator {
	t.Helper()
	kubefiles, err := filepath.Abs(filepath.Join("..", "..", "..", "kubefiles", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	repos, err := json.Marshal([]map[string]any{{
		"repo": "^codertocat/hello-world$", "branch": "^(master|feature/x)$",
		"builds": []map[string]any{{"image": "busybox:1.36", "kubefiles_path": kubefiles}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddress(t)
	cmd := exec.Command(rieBinary(t), "--runtime-interface-emulator-address", addr, bootstrap)
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RUNBOAT_") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "KUBECONFIG=") {
			environ = append(environ, kv)
		}
	}
	cmd.Env = append(environ,
		"KUBECONFIG="+env.Cluster.Kubeconfig(),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60",
		"AWS_LAMBDA_FUNCTION_NAME=runboat",
		"RUNBOAT_REPOS="+string(repos),
		"RUNBOAT_BUILD_NAMESPACE="+env.Namespace,
		"RUNBOAT_BUILD_DOMAIN=builds.example.org",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET="+rieSecret,
		"RUNBOAT_DISABLE_COMMIT_STATUSES=true",
		"RUNBOAT_API_ADMIN_USER=admin",
		"RUNBOAT_API_ADMIN_PASSWD=pw",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	out := &syncWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		t.Logf("the emulator, killed: %v", <-exited)
		if t.Failed() {
			t.Logf("the emulator's output:\n%s", out.String())
		}
	})
	e := &emulator{url: "http://" + addr + rieInvocations, output: out}
	// The emulator listens at once; the function starts on the first
	// invocation (that is the init the REPORT line times).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return e
		}
		select {
		case err := <-exited:
			t.Fatalf("the emulator exited (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator does not listen on %s: %v\n%s", addr, err, out.String())
		}
	}
}

// invoke sends one function URL event and returns the function's response.
func (e *emulator) invoke(t *testing.T, req events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	res, err := client.Post(e.url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the emulator answered %s: %s", res.Status, buf.String())
	}
	var out events.LambdaFunctionURLResponse
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil || out.StatusCode == 0 {
		t.Fatalf("not a function URL response (%v): %s", err, buf.String())
	}
	return out
}

// urlEvent is a function URL event of method on path with headers and body.
func urlEvent(method, path, query string, headers map[string]string, body []byte) events.LambdaFunctionURLRequest {
	h := map[string]string{"host": "abcdefgh.lambda-url.eu-west-1.on.aws"}
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	return events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        path,
		RawQueryString: query,
		Headers:        h,
		Body:           string(body),
		RequestContext: events.LambdaFunctionURLRequestContext{
			RequestID:  "rie-" + strings.ReplaceAll(strings.Trim(path, "/"), "/", "-"),
			DomainName: h["host"],
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.10", UserAgent: h["user-agent"],
			},
		},
	}
}

// deliveryEvent is a GitHub delivery of the payload name as a function
// URL event, signed with secret.
func deliveryEvent(t *testing.T, event, name, secret string) events.LambdaFunctionURLRequest {
	t.Helper()
	body := testutil.Payload(t, name)
	return urlEvent(http.MethodPost, "/webhooks/github", "", map[string]string{
		"content-type":          "application/json",
		"user-agent":            "GitHub-Hookshot/044aadd",
		github.HeaderDelivery:   testutil.DeliveryID,
		github.HeaderEvent:      event,
		github.HeaderSignature:  github.Signature(body, []byte(secret)),
		"x-github-hook-id":      "292430182",
		"x-github-hook-install": "repository",
	}, body)
}

// initDuration reads the Init Duration of the emulator's REPORT lines.
var initDuration = regexp.MustCompile(`Init Duration: ([0-9.]+ ms)`)

func TestUnderLambdaRuntimeEmulator(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the emulator runs on linux only")
	}
	env := e2e.New(t)
	bootstrap := packagedBootstrap(t)
	e := startEmulator(t, bootstrap, env)
	ctx := context.Background()

	// The first invocation starts the function: its extra time over a
	// warm one is the init (the process, the configuration, the clients).
	// The emulator's own Init Duration times only its handing of the init
	// to its sandbox, which is asynchronous in this version; both are
	// logged, neither asserted (a timed assertion on a shared machine is
	// flaky).
	var took [2]time.Duration
	for i := range took {
		start := time.Now()
		if res := e.invoke(t, deliveryEvent(t, "ping", "ping", rieSecret)); res.StatusCode != http.StatusOK {
			t.Errorf("ping: %d %s, want 200", res.StatusCode, res.Body)
		}
		took[i] = time.Since(start)
	}
	t.Logf("init under the emulator: first ping %v, second %v: the init took about %v", took[0], took[1], took[0]-took[1])
	if m := initDuration.FindStringSubmatch(e.output.String()); m != nil {
		t.Logf("the emulator's REPORT says Init Duration: %s", m[1])
	} else {
		t.Errorf("no Init Duration in the emulator's output:\n%s", e.output.String())
	}

	if res := e.invoke(t, deliveryEvent(t, "push", "push.branch", "not-the-secret")); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad signature: %d %s, want 401", res.StatusCode, res.Body)
	}
	deps, err := env.Client.AppsV1().Deployments(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 0 {
		t.Fatalf("a delivery with a bad signature created %d Deployments", len(deps.Items))
	}

	if res := e.invoke(t, deliveryEvent(t, "push", "push.branch", rieSecret)); res.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d %s, want 201", res.StatusCode, res.Body)
	}
	var push struct {
		After string `json:"after"`
	}
	if err := json.Unmarshal(testutil.Payload(t, "push.branch"), &push); err != nil {
		t.Fatal(err)
	}
	deps, err = env.Client.AppsV1().Deployments(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 1 {
		t.Fatalf("the push made %d Deployments, want 1", len(deps.Items))
	}
	d := deps.Items[0]
	a := d.Annotations
	if a[model.AnnotationRepo] != "codertocat/hello-world" || a[model.AnnotationTargetBranch] != "master" ||
		a[model.AnnotationPR] != "" || a[model.AnnotationCommit] != push.After {
		t.Errorf("the build's annotations: %v", a)
	}
	if s := a[model.AnnotationInitStatus]; s != string(model.InitTodo) && s != string(model.InitStarted) {
		t.Errorf("init status %q, want todo or started", s)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
		t.Errorf("replicas %v, want 0", d.Spec.Replicas)
	}
	build := d.Labels[model.LabelBuild]

	res := e.invoke(t, urlEvent(http.MethodGet, "/repos/codertocat/hello-world", "", map[string]string{"user-agent": "Mozilla/5.0"}, nil))
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Headers["Content-Type"], "text/html") ||
		!strings.Contains(res.Body, "<!doctype html>") || !strings.Contains(res.Body, fmt.Sprintf("data-build=%q", build)) {
		t.Errorf("console page: %d %v\n%s", res.StatusCode, res.Headers, res.Body)
	}
}

// With RUNBOAT_RESPONSE_STREAMING (a function URL in RESPONSE_STREAM mode),
// the function answers in Lambda's streaming format: a JSON prelude with
// the status and headers, eight zero bytes, then the body. This emulator
// holds a streamed response until the invocation ends (a function URL sends
// it as it comes; lambdaurl's tests check that each write goes at once), so
// what is checked here is the format, and that the build events stream
// ends by itself before the function's timeout, cleanly, with its events.
func TestStreamingUnderLambdaRuntimeEmulator(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the emulator runs on linux only")
	}
	env := e2e.New(t)
	const timeout = 6 * time.Second
	e := startEmulator(t, packagedBootstrap(t), env, "RUNBOAT_RESPONSE_STREAMING=true",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_TIMEOUT=%d", int(timeout.Seconds())))
	push, err := json.Marshal(deliveryEvent(t, "push", "push.branch", rieSecret))
	if err != nil {
		t.Fatal(err)
	}
	prelude, body := e.stream(t, push)
	if _, err := io.ReadAll(body); err != nil || prelude.StatusCode != http.StatusCreated {
		t.Fatalf("push in streaming mode: %+v (%v), want 201", prelude, err)
	}
	events, err := json.Marshal(urlEvent(http.MethodGet, "/api/v1/build-events", "repo=codertocat/hello-world", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	prelude, body = e.stream(t, events)
	stream, err := io.ReadAll(body)
	took := time.Since(start)
	if err != nil || prelude.StatusCode != http.StatusOK || prelude.Headers["Content-Type"] != "text/event-stream" {
		t.Fatalf("build events: %+v (%v), want 200 text/event-stream", prelude, err)
	}
	if !strings.HasPrefix(string(stream), "data: ") || !strings.Contains(string(stream), `"event":"upd"`) {
		t.Errorf("the stream %q: want the build's upd", stream)
	}
	if took >= timeout {
		t.Errorf("the stream ended after %v: not before the function's timeout of %v", took, timeout)
	}
	t.Logf("the stream ended by itself after %v (timeout %v)", took, timeout)
}

// streamPrelude is the head of a streamed function URL response.
type streamPrelude struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
}

// stream invokes the function with a streaming response and returns its
// prelude and the rest of the body, as it comes.
func (e *emulator) stream(t *testing.T, event []byte) (streamPrelude, io.Reader) {
	t.Helper()
	res, err := http.Post(e.url, "application/json", bytes.NewReader(event)) //nolint:noctx // bounded by the emulator's timeout
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(res.Body)
	head, err := r.ReadString(0)
	if err != nil {
		res.Body.Close() //nolint:errcheck,gosec // failing anyway
		t.Fatalf("no streaming prelude (%v): %q", err, head)
	}
	zeros := make([]byte, 7)
	if _, err := io.ReadFull(r, zeros); err != nil || !bytes.Equal(zeros, make([]byte, 7)) {
		res.Body.Close() //nolint:errcheck,gosec // failing anyway
		t.Fatalf("the prelude %q is not followed by eight zero bytes: %q, %v", head, zeros, err)
	}
	var p streamPrelude
	if err := json.Unmarshal([]byte(strings.TrimSuffix(head, "\x00")), &p); err != nil {
		res.Body.Close() //nolint:errcheck,gosec // failing anyway
		t.Fatalf("prelude %q: %v", head, err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return p, r
}

// Under terraform/modules/function, the secrets are SSM parameters that the
// function reads at init: here the webhook secret comes from a server that
// answers SSM's GetParameters (there is no SSM without network), and a
// delivery signed with it is accepted.
func TestSecretsFromSSMUnderLambdaRuntimeEmulator(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the emulator runs on linux only")
	}
	var asked []string
	var mu sync.Mutex
	ssm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Names []string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameters" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		asked = append(asked, in.Names...)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"Parameters":        []map[string]any{{"Name": "/runboat/github-webhook-secret", "Type": "SecureString", "Value": rieSecret}},
			"InvalidParameters": []string{},
		})
	}))
	defer ssm.Close()
	env := e2e.New(t)
	e := startEmulator(t, packagedBootstrap(t), env,
		"RUNBOAT_GITHUB_WEBHOOK_SECRET=",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET_SSM_PARAMETER=/runboat/github-webhook-secret",
		"AWS_ENDPOINT_URL_SSM="+ssm.URL, "AWS_REGION=eu-west-1",
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret-key", "AWS_SESSION_TOKEN=token")
	if res := e.invoke(t, deliveryEvent(t, "ping", "ping", rieSecret)); res.StatusCode != http.StatusOK {
		t.Errorf("ping signed with the secret of SSM: %d %s, want 200", res.StatusCode, res.Body)
	}
	if res := e.invoke(t, deliveryEvent(t, "ping", "ping", "another")); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("ping signed with another secret: %d %s, want 401", res.StatusCode, res.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || asked[0] != "/runboat/github-webhook-secret" {
		t.Errorf("parameters asked of SSM: %v, want the webhook secret's, once", asked)
	}
}
