package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"runboat.dev/shared/logging"
)

// statusServer records the status requests it receives and answers with code.
type statusServer struct {
	mu       sync.Mutex
	code     int
	requests []recordedRequest
}

type recordedRequest struct {
	method, path, auth string
	body               map[string]any
}

func (s *statusServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	s.mu.Lock()
	s.requests = append(s.requests, recordedRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), body})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(s.code)
	if s.code >= 300 {
		_, _ = w.Write([]byte(`{"message":"Validation Failed"}`))
		return
	}
	_, _ = w.Write([]byte(`{"id":1,"state":"pending","context":"runboat/build"}`))
}

func newTestClient(t *testing.T, code int) (*Client, *statusServer) {
	t.Helper()
	s := &statusServer{code: code}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.Client(), "s3cr3t-token", srv.URL)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c, s
}

func TestPostStatus(t *testing.T) {
	c, s := newTestClient(t, http.StatusCreated)
	const sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	err := c.PostStatus(context.Background(), "oca/mis-builder", sha, StatusPending,
		TargetURL("https://runboat.example.org/", "b0123"), "queued")
	if err != nil {
		t.Fatalf("PostStatus: %v", err)
	}
	if len(s.requests) != 1 {
		t.Fatalf("got %d requests, want 1", len(s.requests))
	}
	r := s.requests[0]
	if r.method != http.MethodPost || r.path != "/repos/oca/mis-builder/statuses/"+sha {
		t.Errorf("got %s %s", r.method, r.path)
	}
	if r.auth != "Bearer s3cr3t-token" {
		t.Errorf("got Authorization %q", r.auth)
	}
	want := map[string]any{
		"state":       "pending",
		"context":     "runboat/build",
		"target_url":  "https://runboat.example.org/builds/b0123",
		"description": "queued",
	}
	if len(r.body) != len(want) {
		t.Errorf("got body %v, want %v", r.body, want)
	}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("body[%q] = %v, want %v", k, r.body[k], v)
		}
	}
}

func TestPostStatusOmitsEmptyAndCutsLong(t *testing.T) {
	c, s := newTestClient(t, http.StatusCreated)
	long := strings.Repeat("é", 200)
	if err := c.PostStatus(context.Background(), "o/r", "abc", StatusFailure, "", long); err != nil {
		t.Fatalf("PostStatus: %v", err)
	}
	body := s.requests[0].body
	if _, ok := body["target_url"]; ok {
		t.Errorf("empty target URL was sent: %v", body)
	}
	if d, _ := body["description"].(string); len([]rune(d)) != maxDescription {
		t.Errorf("description has %d characters, want %d", len([]rune(d)), maxDescription)
	}
}

func TestPostStatusErrors(t *testing.T) {
	c, s := newTestClient(t, http.StatusUnprocessableEntity)
	ctx := context.Background()
	if err := c.PostStatus(ctx, "o/r", "abc", StatusSuccess, "", ""); err == nil {
		t.Error("want an error on a 422")
	}
	for _, repo := range []string{"norepo", "/r", "o/", "o/r/x"} {
		if err := c.PostStatus(ctx, repo, "abc", StatusSuccess, "", ""); err == nil {
			t.Errorf("repo %q: want an error", repo)
		}
	}
	if err := c.PostStatus(ctx, "o/r", "abc", StatusState("done"), "", ""); err == nil {
		t.Error("want an error on an invalid state")
	}
	if len(s.requests) != 1 {
		t.Errorf("invalid input reached GitHub: %d requests", len(s.requests))
	}
}

func TestNewClientErrors(t *testing.T) {
	if _, err := NewClient(nil, "", ""); err == nil {
		t.Error("want an error without a token")
	}
	for _, u := range []string{"ftp://x/", "http://", "://x"} {
		if _, err := NewClient(nil, "t", u); err == nil {
			t.Errorf("want an error with the API URL %q", u)
		}
	}
	c, err := NewClient(nil, "t", "")
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if got := c.client.BaseURL.String(); got != "https://api.github.com/" {
		t.Errorf("default base URL %q", got)
	}
}

// NewAPIClient without a token makes anonymous calls (the console's
// trigger endpoints); NewClient, which posts statuses, needs one.
func TestNewAPIClientAnonymous(t *testing.T) {
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"ref": "refs/heads/main", "object": {"sha": "abc"}}`))
	}))
	defer srv.Close()
	for _, token := range []string{"", "t0ken"} {
		c, err := NewAPIClient(srv.Client(), token, srv.URL)
		if err != nil {
			t.Fatalf("NewAPIClient: %v", err)
		}
		if _, _, err := c.Git.GetRef(context.Background(), "o", "r", "heads/main"); err != nil {
			t.Fatalf("GetRef: %v", err)
		}
	}
	if len(auth) != 2 || auth[0] != "" || auth[1] != "Bearer t0ken" {
		t.Errorf("Authorization headers %q, want none then the token", auth)
	}
}

func TestTargetURL(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"https://runboat.example.org", "https://runboat.example.org/builds/b1"},
		{"https://runboat.example.org/", "https://runboat.example.org/builds/b1"},
		{"https://example.org/runboat", "https://example.org/runboat/builds/b1"},
		{"", ""},
	} {
		if got := TargetURL(tc.base, "b1"); got != tc.want {
			t.Errorf("TargetURL(%q) = %q, want %q", tc.base, got, tc.want)
		}
		wantLive := tc.want
		if wantLive != "" {
			wantLive += "?live"
		}
		if got := LiveURL(tc.base, "b1"); got != wantLive {
			t.Errorf("LiveURL(%q) = %q, want %q", tc.base, got, wantLive)
		}
	}
}

type failingPoster struct{ calls int }

func (p *failingPoster) PostStatus(context.Context, string, string, StatusState, string, string) error {
	p.calls++
	return errors.New("boom")
}

func TestNotifyStatusLogsFailure(t *testing.T) {
	var buf bytes.Buffer
	logger := zerolog.New(&buf)
	p := &failingPoster{}
	// The logger carried by the context gets the failure.
	NotifyStatus(logging.Into(context.Background(), logger), p, "o/r", "abc", StatusPending, "", "")
	if p.calls != 1 {
		t.Fatalf("got %d calls", p.calls)
	}
	if !strings.Contains(buf.String(), `"level":"warn"`) || !strings.Contains(buf.String(), "boom") {
		t.Errorf("failure not logged to the context logger: %s", buf.String())
	}
}

func TestNoopStatusPoster(t *testing.T) {
	if err := (NoopStatusPoster{}).PostStatus(context.Background(), "o/r", "abc", StatusPending, "", ""); err != nil {
		t.Fatal(err)
	}
}
