package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runMainEnv makes the test binary run main instead of the tests, so that a
// test can run the function as Lambda runs it: a process of its own.
const runMainEnv = "RUNBOAT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = append([]string{os.Args[0]}, strings.Fields(os.Getenv(runMainEnv+"_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeRuntime is the Lambda runtime API of one invocation: it hands the
// event to the first request for the next invocation, records the response,
// and holds every later request until the test ends.
type fakeRuntime struct {
	event     []byte
	requestID string

	mu       sync.Mutex
	served   bool
	response []byte
	answered chan struct{}
	done     chan struct{}
}

func (f *fakeRuntime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/2018-06-01/runtime/invocation/"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == prefix+"next":
		f.mu.Lock()
		first := !f.served
		f.served = true
		f.mu.Unlock()
		if !first {
			select {
			case <-f.done:
			case <-r.Context().Done():
			}
			http.Error(w, "no more invocations", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", f.requestID)
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:000000000000:function:runboat")
		_, _ = w.Write(f.event)
	case r.Method == http.MethodPost && r.URL.Path == prefix+f.requestID+"/response":
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.response = body
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		close(f.answered)
	default:
		http.Error(w, "unexpected call "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
	}
}

// syncWriter is an io.Writer safe for the process's output goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// The function run as a Lambda logs what the Lambda handler logs: main puts
// its logger in the context of the invocations.
func TestLambdaInvocationLogs(t *testing.T) {
	// A function URL event whose body is not valid base64: the Lambda
	// handler answers 400 itself and logs a warning.
	event, err := json.Marshal(map[string]any{
		"version":         "2.0",
		"rawPath":         "/webhooks/github",
		"body":            "%%%",
		"isBase64Encoded": true,
		"requestContext": map[string]any{
			"requestId": "req-lambda-1",
			"http":      map[string]any{"method": "POST", "path": "/webhooks/github", "protocol": "HTTP/1.1"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{event: event, requestID: "inv-1", answered: make(chan struct{}), done: make(chan struct{})}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer close(rt.done)

	// The clients are made without contacting the API server: an
	// unreachable one is enough for this event.
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		runMainEnv+"=1",
		"AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(srv.URL, "http://"),
		"RUNBOAT_KUBECONFIG_DATA="+kubeconfig,
		`RUNBOAT_REPOS=[{"repo":"^acme/app$","branch":".*","builds":[{"image":"busybox:1.36"}]}]`,
		"RUNBOAT_BUILD_NAMESPACE=builds",
		"RUNBOAT_BUILD_DOMAIN=builds.example.org",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET=s3cret",
		"RUNBOAT_DISABLE_COMMIT_STATUSES=true",
		"RUNBOAT_API_ADMIN_USER=admin",
		"RUNBOAT_API_ADMIN_PASSWD=pw",
	)
	var stderr syncWriter
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		t.Logf("the function, killed: %v", <-exited)
	}()
	select {
	case <-rt.answered:
	case err := <-exited:
		t.Fatalf("the function exited before answering (%v): %s", err, stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("no answer from the function within a minute: %s", stderr.String())
	}
	rt.mu.Lock()
	response := rt.response
	rt.mu.Unlock()
	var res struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(response, &res); err != nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("response %s (%v), want a 400", response, err)
	}
	// The warning is written before the response is sent; it may still be
	// on its way through the pipe.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for l := range strings.SplitSeq(stderr.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "function URL request refused" && m["request_id"] == "req-lambda-1" {
				return
			}
		}
	}
	t.Fatalf("the function's output has no line about the refused request:\n%s", stderr.String())
}
