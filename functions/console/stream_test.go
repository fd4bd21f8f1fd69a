package console

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"runboat.dev/shared/model"
)

// sseClient reads a build events stream: its events, and its comment lines.
type sseClient struct {
	events   chan streamEvent
	comments chan string
	res      *http.Response
	cancel   context.CancelFunc
}

// openStream opens the build events stream of query on the console.
func (f *fixture) openStream(t *testing.T, query string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/api/v1/build-events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req) //nolint:bodyclose // closed by the cleanup of the client
	if err != nil {
		cancel()
		t.Fatalf("GET build-events: %v", err)
	}
	c := &sseClient{events: make(chan streamEvent, 100), comments: make(chan string, 100), res: res, cancel: cancel}
	t.Cleanup(c.close)
	go c.read(t)
	return c
}

func (c *sseClient) close() {
	c.cancel()
	c.res.Body.Close() //nolint:errcheck,gosec // the test is over
}

// read parses the stream as EventSource does: "data:" lines make an event,
// a blank line ends it, a line starting with ":" is a comment.
func (c *sseClient) read(t *testing.T) {
	defer close(c.events)
	sc := bufio.NewScanner(c.res.Body)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			c.comments <- line
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		case line == "" && len(data) > 0:
			var ev streamEvent
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &ev); err != nil {
				t.Errorf("an event of the stream is not a build event (%v): %s", err, data)
			}
			data = nil
			c.events <- ev
		}
	}
}

// next is the next event, failing the test when none comes within 10 s.
func (c *sseClient) next(t *testing.T, what string) streamEvent {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatalf("%s: the stream ended", what)
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no event within 10 s", what)
	}
	panic("unreachable")
}

// nextOf reads events until one of build name, failing on an event of a
// build of a repository other than repo (the stream's filter).
func (c *sseClient) nextOf(t *testing.T, name, repo, what string) streamEvent {
	t.Helper()
	for {
		ev := c.next(t, what)
		if ev.Build.CommitInfo.Repo != repo {
			t.Fatalf("%s: an event of %s, of repository %s", what, ev.Build.Name, ev.Build.CommitInfo.Repo)
		}
		if ev.Build.Name == name {
			return ev
		}
	}
}

// want reads the next event and checks it is event of build name.
func (c *sseClient) want(t *testing.T, event, name string, what string) streamEvent {
	t.Helper()
	ev := c.next(t, what)
	if ev.Event != event || ev.Build.Name != name {
		t.Fatalf("%s: got %q of %s, want %q of %s", what, ev.Event, ev.Build.Name, event, name)
	}
	return ev
}

func TestBuildEventsStream(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.KeepAlive = 300 * time.Millisecond })
	first := f.createRawBuild(t, spec{repo: "acme/shop", branch: "main"})
	time.Sleep(1100 * time.Millisecond) // creation times have a one-second resolution
	second := f.createRawBuild(t, spec{repo: "acme/shop", branch: "main", pr: 7})
	other := f.createRawBuild(t, spec{repo: "acme/other", branch: "main"})

	s := f.openStream(t, "?repo=acme/shop")
	if ct := s.res.Header.Get("Content-Type"); s.res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q: want 200 text/event-stream", s.res.StatusCode, ct)
	}
	// The snapshot: the builds of the repository, oldest first, with
	// runboat's fields (null pr of a branch build kept).
	ev := s.want(t, eventUpdated, first.Name(), "snapshot")
	if ev.Build.CommitInfo.Repo != "acme/shop" || ev.Build.CommitInfo.PR != nil || ev.Build.Status != model.StatusStopped {
		t.Errorf("snapshot of %s: %+v", first.Name(), ev.Build)
	}
	s.want(t, eventUpdated, second.Name(), "snapshot")

	// A change of a build of another repository says nothing; a start of a
	// build of the repository is told as it happens.
	f.patchAnnotation(t, other.Name(), model.AnnotationLastScaled, model.FormatTime(time.Now()))
	began := time.Now()
	f.do(t, http.MethodPost, "/api/v1/builds/"+second.Name()+"/start", "").want(t, http.StatusOK, "start")
	ev = s.nextOf(t, second.Name(), "acme/shop", "start")
	t.Logf("the start was streamed %s after it was asked", time.Since(began))
	if ev.Build.Status != model.StatusStarting && ev.Build.Status != model.StatusStarted {
		t.Errorf("after a start: status %s, want starting or started", ev.Build.Status)
	}
	// Status updates of the Deployment and changes of what the API does
	// not show are not sent: the next event of the build is its undeploy.
	f.patchAnnotation(t, first.Name(), "example.test/touched", "1")
	f.markUndeploying(t, first.Name())
	ev = s.nextOf(t, first.Name(), "acme/shop", "undeploy")
	if ev.Event != eventUpdated || ev.Build.Status != model.StatusUndeploying {
		t.Errorf("after a delete: %q with status %s, want upd undeploying", ev.Event, ev.Build.Status)
	}
	// The finalizer goes: the build is gone.
	f.removeFinalizer(t, first.Name())
	if ev = s.nextOf(t, first.Name(), "acme/shop", "deletion"); ev.Event != eventDeleted {
		t.Errorf("after the finalizer went: %q of %s, want del", ev.Event, ev.Build.Name)
	}
	// An idle stream says it is alive.
	select {
	case c := <-s.comments:
		if c != ": ping" {
			t.Errorf("comment line %q, want \": ping\"", c)
		}
	case <-time.After(5 * time.Second):
		t.Error("no keep-alive comment within 5 s")
	}
}

func TestBuildEventsFilters(t *testing.T) {
	f := newFixture(t)
	branch := f.createRawBuild(t, spec{repo: "acme/shop", branch: "main"})
	pr := f.createRawBuild(t, spec{repo: "acme/shop", branch: "main", pr: 7})
	f.createRawBuild(t, spec{repo: "acme/shop", branch: "16.0"})
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"?repo=acme/shop&branch=main", branch.Name()},
		{"?repo=ACME/Shop&pr=7", pr.Name()},
		{"?build_name=" + pr.Name(), pr.Name()},
	} {
		s := f.openStream(t, tc.query)
		s.want(t, eventUpdated, tc.want, tc.query)
		select {
		case ev := <-s.events:
			t.Errorf("%s: a second build in the snapshot: %s", tc.query, ev.Build.Name)
		case <-time.After(300 * time.Millisecond):
		}
		s.close()
	}
	f.do(t, http.MethodGet, "/api/v1/build-events?pr=x", "").want(t, http.StatusBadRequest, "bad pr")
	f.do(t, http.MethodGet, "/api/v1/build-events?repo=not-a-repo", "").want(t, http.StatusBadRequest, "bad repo")
}

// bufferedWriter is a ResponseWriter that cannot flush, as a buffered
// function URL's.
type bufferedWriter struct{ rec *httptest.ResponseRecorder }

func (w bufferedWriter) Header() http.Header         { return w.rec.Header() }
func (w bufferedWriter) Write(p []byte) (int, error) { return w.rec.Write(p) }
func (w bufferedWriter) WriteHeader(code int)        { w.rec.WriteHeader(code) }

// A response that cannot be streamed gets the snapshot and a reconnection
// delay, and ends.
func TestBuildEventsBuffered(t *testing.T) {
	f := newFixture(t)
	b := f.createRawBuild(t, spec{repo: "acme/shop", branch: "main"})
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.h.ServeHTTP(bufferedWriter{rec}, httptest.NewRequest(http.MethodGet, "/api/v1/build-events", nil))
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a buffered build events response did not end")
	}
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `"name":"`+b.Name()+`"`) || !strings.HasSuffix(body, "retry: 5000\n\n") {
		t.Errorf("status %d, body %q: want the snapshot then a retry delay", rec.Code, body)
	}
}

// patchAnnotation sets an annotation of the Deployment of a build.
func (f *fixture) patchAnnotation(t *testing.T, name, key, value string) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Client.AppsV1().Deployments(f.env.Namespace).Patch(context.Background(), f.deploymentName(t, name), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// removeFinalizer lets the Deployment of a build go.
func (f *fixture) removeFinalizer(t *testing.T, name string) {
	t.Helper()
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := f.env.Client.AppsV1().Deployments(f.env.Namespace).Patch(context.Background(), f.deploymentName(t, name), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}
