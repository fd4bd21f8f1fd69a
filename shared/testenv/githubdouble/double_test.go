package githubdouble

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that keeps the errors reported to it.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func TestRefusesWhatGitHubDoesNotAllow(t *testing.T) {
	rec := &recorder{TB: t}
	d := New(rec)
	d.SetBranch("acme/app", "main", strings.Repeat("a", 40))
	for _, tc := range []struct {
		name, method, path, body, want string
	}{
		{"unknown path", "GET", "/repos/acme/app/branchez", "", "no operation"},
		{"unknown method", "DELETE", "/repos/acme/app/branches", "", "method DELETE not allowed"},
		{"unknown query parameter", "GET", "/repos/acme/app/pulls?status=open", "", "unknown query parameter status"},
		{"enum value of a query parameter", "GET", "/repos/acme/app/pulls?state=merged", "", `"merged" is not one of`},
		{"integer parameter", "GET", "/repos/acme/app/branches?per_page=many", "", "is not an integer"},
		{"commit status state", "POST", "/repos/acme/app/statuses/abc", `{"state": "done"}`, "body.state: done is not one of"},
		{"unknown body field", "POST", "/repos/acme/app/statuses/abc", `{"state": "success", "url": "x"}`, "unknown field url"},
		{"missing required field", "POST", "/repos/acme/app/statuses/abc", `{"context": "x"}`, "missing required field state"},
		{"wrong type", "POST", "/repos/acme/app/statuses/abc", `{"state": "success", "description": 3}`, "want a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.errors = nil
			req, err := http.NewRequest(tc.method, d.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := d.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("answered %d", resp.StatusCode)
			}
			if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], tc.want) {
				t.Errorf("reported %q, want one error with %q", rec.errors, tc.want)
			}
		})
	}
	// What GitHub allows is answered, and fails nothing.
	rec.errors = nil
	for _, path := range []string{"/repos/acme/app/branches?per_page=100&page=1", "/repos/acme/app/pulls?state=open", "/repos/acme/app/git/ref/heads/main"} {
		resp, err := d.Client().Get(d.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s answered %d", path, resp.StatusCode)
		}
	}
	if len(rec.errors) != 0 {
		t.Errorf("valid requests reported: %q", rec.errors)
	}
}
