package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// Requests records the requests a client makes to the API server.
type Requests struct {
	mu        sync.Mutex
	seen      []string
	selectors []string
}

// Counting returns a copy of cfg whose clients record each request in the
// Requests returned, as "<METHOD> <path>" (dry runs marked "dry-run").
func Counting(cfg *rest.Config) (*rest.Config, *Requests) {
	out := rest.CopyConfig(cfg)
	r := &Requests{}
	out.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			what := req.Method + " " + req.URL.Path
			if req.URL.Query().Has("dryRun") {
				what += " dry-run"
			}
			r.mu.Lock()
			r.seen = append(r.seen, what)
			if sel := req.URL.Query().Get("labelSelector"); req.Method == http.MethodGet && sel != "" {
				r.selectors = append(r.selectors, ResourceOf(req.URL.Path)+" "+sel)
			}
			r.mu.Unlock()
			return next.RoundTrip(req)
		})
	})
	return out, r
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Take returns the requests recorded since the last Take, sorted, and
// forgets them.
func (r *Requests) Take() []string { return r.take(&r.seen) }

// TakeSelectors returns the label selectors of the reads recorded since
// the last TakeSelectors, as "<resource type> <selector>", sorted, and
// forgets them.
func (r *Requests) TakeSelectors() []string { return r.take(&r.selectors) }

// take returns *list sorted and empties it.
func (r *Requests) take(list *[]string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := *list
	*list = nil
	sort.Strings(out)
	return out
}

// Summary counts requests by method and resource type: "PATCH
// deployments dry-run" and so on, from the paths of Take.
func Summary(reqs []string) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		method, rest, _ := strings.Cut(r, " ")
		path, dry, _ := strings.Cut(rest, " ")
		out[fmt.Sprintf("%s %s %s", method, ResourceOf(path), dry)]++
	}
	return out
}

// ResourceOf returns the resource type of an API path
// (/apis/apps/v1/namespaces/x/deployments/y: deployments).
func ResourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			return parts[i+2]
		}
	}
	if len(parts) > 0 {
		return parts[len(parts)-1]
	}
	return path
}
