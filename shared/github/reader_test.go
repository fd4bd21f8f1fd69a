package github_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"runboat.dev/shared/github"
	"runboat.dev/shared/testenv/githubdouble"
)

func sha(n int) string { return fmt.Sprintf("%040x", n) }

func newReader(t *testing.T, d *githubdouble.Double, cache *github.PageCache, maxRequests int) *github.Reader {
	t.Helper()
	c, err := github.NewAPIClient(d.Client(), "t0ken", d.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	return github.NewReader(c, cache, maxRequests)
}

func TestReaderPagesAndConditionalRequests(t *testing.T) {
	d := githubdouble.New(t)
	for i := range 150 {
		d.SetBranch("Acme/App", fmt.Sprintf("b%03d", i), sha(i))
	}
	d.OpenPR("acme/app", githubdouble.PR{Number: 7, Base: "b001", Head: sha(1000)})
	ctx := context.Background()

	r := newReader(t, d, nil, 100)
	got, err := r.Read(ctx, "acme/App")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Branches) != 150 || got.Branches["b149"] != sha(149) {
		t.Errorf("got %d branches, b149 at %s", len(got.Branches), got.Branches["b149"])
	}
	if p := got.Pulls[7]; len(got.Pulls) != 1 || p.Base != "b001" || p.Head != sha(1000) {
		t.Errorf("got pulls %v", got.Pulls)
	}
	reqs := d.Requests()
	if len(reqs) != 3 || r.Requests != 3 {
		t.Fatalf("want 3 requests (2 pages of branches, 1 of pulls), got %d: %v", len(reqs), reqs)
	}
	for _, q := range reqs {
		if q.Conditional || q.Auth != "Bearer t0ken" {
			t.Errorf("first read: %+v", q)
		}
	}

	// The next run, with the cache: conditional requests, all 304.
	cache := r.Cache(nil)
	r2 := newReader(t, d, &cache, 100)
	again, err := r2.Read(ctx, "acme/app")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(again.Branches, got.Branches) || !maps.Equal(again.Pulls, got.Pulls) {
		t.Error("the cached read differs")
	}
	for _, q := range d.Requests() {
		if !q.Conditional || q.Code != http.StatusNotModified {
			t.Errorf("second read: %+v, want a conditional request answered 304", q)
		}
	}
	if r2.NotModified != 3 {
		t.Errorf("NotModified = %d", r2.NotModified)
	}
	if prev, ok := r2.Previous("acme/app"); !ok || len(prev.Branches) != 150 || prev.Pulls[7].Head != sha(1000) {
		t.Errorf("Previous = %v, %v", ok, prev.Pulls)
	}

	// A change on the second page of branches: that page is read again.
	d.SetBranch("acme/app", "b140", sha(5000))
	cache = r2.Cache(nil)
	r3 := newReader(t, d, &cache, 100)
	moved, err := r3.Read(ctx, "acme/app")
	if err != nil {
		t.Fatal(err)
	}
	if moved.Branches["b140"] != sha(5000) {
		t.Errorf("b140 at %s", moved.Branches["b140"])
	}
	if r3.NotModified != 2 || r3.Requests != 3 {
		t.Errorf("requests %d, not modified %d; want 3 and 2", r3.Requests, r3.NotModified)
	}
}

func TestReaderStops(t *testing.T) {
	ctx := context.Background()
	d := githubdouble.New(t)
	d.SetBranch("acme/app", "main", sha(1))

	t.Run("outage", func(t *testing.T) {
		d.Outage(http.StatusBadGateway)
		defer d.Outage(0)
		_, err := newReader(t, d, nil, 10).Read(ctx, "acme/app")
		if err == nil || github.Stopping(err) {
			t.Fatalf("got %v, want an error of this repository only", err)
		}
	})
	t.Run("budget", func(t *testing.T) {
		_, err := newReader(t, d, nil, 1).Read(ctx, "acme/app")
		if !errors.Is(err, github.ErrBudget) || !github.Stopping(err) {
			t.Fatalf("got %v, want ErrBudget", err)
		}
	})
	t.Run("rate limit almost spent", func(t *testing.T) {
		d.SetRateRemaining(github.RateReserve - 1)
		defer d.SetRateRemaining(4999)
		d.Requests()
		_, err := newReader(t, d, nil, 10).Read(ctx, "acme/app")
		if !errors.Is(err, github.ErrRateLimited) {
			t.Fatalf("got %v, want ErrRateLimited", err)
		}
		if n := len(d.Requests()); n != 1 {
			t.Errorf("%d requests made, want 1 then a stop", n)
		}
	})
	t.Run("invalid repository", func(t *testing.T) {
		if _, err := newReader(t, d, nil, 10).Read(ctx, "nope"); err == nil {
			t.Fatal("want an error")
		}
	})
}

// Every state of a commit status, as the webhook and the jobs post them,
// is what GitHub's description allows (the double fails the test
// otherwise).
func TestPostStatusAsGitHubAllows(t *testing.T) {
	d := githubdouble.New(t)
	c, err := github.NewClient(d.Client(), "t0ken", d.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	states := []github.StatusState{github.StatusPending, github.StatusSuccess, github.StatusFailure, github.StatusError}
	for _, s := range states {
		if err := c.PostStatus(context.Background(), "Acme/App", sha(1), s, github.LiveURL("https://runboat.example.org", "b1"), "é"+string(s)); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := c.PostStatus(context.Background(), "acme/app", sha(1), github.StatusSuccess, "", ""); err != nil {
		t.Fatalf("without a link: %v", err)
	}
	got := d.Statuses()
	if len(got) != len(states)+1 {
		t.Fatalf("got %d statuses", len(got))
	}
	for i, s := range states {
		if got[i].State != string(s) || got[i].Context != github.StatusContext || got[i].Repo != "acme/app" || got[i].TargetURL != "https://runboat.example.org/builds/b1?live" {
			t.Errorf("status %d: %+v", i, got[i])
		}
	}
}

// GitHub's secondary rate limit (403 with its documentation URL) and a 429
// stop the reads, with when to try again.
func TestReaderSecondaryLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
		want string
	}{
		{"secondary", http.StatusForbidden, `{"message": "You have exceeded a secondary rate limit", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`, "retry after 1m0s"},
		{"too many requests", http.StatusTooManyRequests, `{"message": "Too Many Requests"}`, `Retry-After "60"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "60")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.code)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := github.NewAPIClient(srv.Client(), "t", srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, err = github.NewReader(c, nil, 10).Read(context.Background(), "acme/app")
			if !errors.Is(err, github.ErrRateLimited) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrRateLimited with %q", err, tc.want)
			}
		})
	}
}
