package github

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v58/github"
)

// PerPage is the page size of the lists the Reader asks for, GitHub's
// largest.
const PerPage = 100

// RateReserve is the part of the hourly rate limit a Reader leaves to the
// other uses of the same credentials (commit statuses, the console's
// triggers): it stops when fewer requests than that remain.
const RateReserve = 50

// Sentinel errors of the Reader; test them with errors.Is.
var (
	// ErrBudget: the run made the most requests it may make.
	ErrBudget = errors.New("request budget of the run spent")
	// ErrRateLimited: GitHub's rate limit, or a secondary rate limit, stops
	// the reads until a later run.
	ErrRateLimited = errors.New("GitHub rate limit reached")
)

// Stopping tells whether err ends every read of the run (the budget is
// spent or GitHub limits the rate), not only the read of one repository.
func Stopping(err error) bool {
	return errors.Is(err, ErrBudget) || errors.Is(err, ErrRateLimited)
}

// Repository is what GitHub says of a repository: its branches and its open
// pull requests, with their head commits.
type Repository struct {
	// Repo is owner/name, lower case.
	Repo string
	// Branches maps each branch to the sha of its head commit.
	Branches map[string]string
	// Pulls maps the number of each open pull request to it.
	Pulls map[int]Pull
}

// Pull is an open pull request.
type Pull struct {
	Number int
	// Base is the branch it is to be merged into.
	Base string
	// Head is the sha of its head commit.
	Head string
}

// PageCache is what a Reader remembers of the pages it read, for the
// conditional requests of the next run: by request path, the ETag of the
// answer and what the Reader took from it.
type PageCache struct {
	Pages map[string]CachedPage `json:"pages"`
}

// CachedPage is one page of a list as last read.
type CachedPage struct {
	ETag string `json:"etag"`
	// Next is the number of the next page, 0 for the last.
	Next  int          `json:"next,omitempty"`
	Items []CachedItem `json:"items,omitempty"`
}

// CachedItem is a branch (Name) or a pull request (Number, Base) and the
// sha of its head.
type CachedItem struct {
	Name   string `json:"n,omitempty"`
	Number int    `json:"p,omitempty"`
	Base   string `json:"b,omitempty"`
	SHA    string `json:"s"`
}

// Reader reads repositories from the GitHub REST API with conditional
// requests (If-None-Match with the ETags of the PageCache: an answer 304
// costs nothing of the rate limit), a bound on the requests of a run, and
// stops at GitHub's rate limits (ErrRateLimited) rather than waiting. It is
// for one run, not for concurrent use.
type Reader struct {
	client *gh.Client
	old    PageCache
	new    PageCache
	max    int
	// stop is set when a response said that the next request must not be
	// made (the rate limit is almost spent).
	stop error
	// Requests counts the requests made; NotModified those answered 304.
	Requests, NotModified int
}

// NewReader returns a Reader making at most maxRequests requests with
// client, whose conditional requests use cache (nil for none).
func NewReader(client *gh.Client, cache *PageCache, maxRequests int) *Reader {
	r := &Reader{client: client, max: maxRequests, new: PageCache{Pages: map[string]CachedPage{}}}
	if cache != nil && cache.Pages != nil {
		r.old = *cache
	} else {
		r.old = PageCache{Pages: map[string]CachedPage{}}
	}
	return r
}

// Cache returns the pages to remember for the next run: those read by this
// run, and those of the repositories in keep (not read this time, or not
// completely: their old pages stay for the next run).
func (r *Reader) Cache(keep []string) PageCache {
	out := PageCache{Pages: maps.Clone(r.new.Pages)}
	for key, p := range r.old.Pages {
		if slices.Contains(keep, repoOfKey(key)) {
			if _, ok := out.Pages[key]; !ok {
				out.Pages[key] = p
			}
		}
	}
	return out
}

// Previous returns what the cache held of repo before this run: the
// repository as the last run read it, and whether it read it.
func (r *Reader) Previous(repo string) (Repository, bool) {
	out := Repository{Repo: repo, Branches: map[string]string{}, Pulls: map[int]Pull{}}
	found := false
	for key, p := range r.old.Pages {
		if repoOfKey(key) != repo {
			continue
		}
		found = true
		for _, it := range p.Items {
			if it.Number != 0 {
				out.Pulls[it.Number] = Pull{Number: it.Number, Base: it.Base, Head: it.SHA}
			} else {
				out.Branches[it.Name] = it.SHA
			}
		}
	}
	return out, found
}

// repoOfKey is the repository of a cache key, "repos/<owner>/<name>/...".
func repoOfKey(key string) string {
	parts := strings.SplitN(key, "/", 4)
	if len(parts) < 4 || parts[0] != "repos" {
		return ""
	}
	return parts[1] + "/" + parts[2]
}

// Read reads the branches and the open pull requests of repo (owner/name),
// every page. Any error leaves the repository unread: GitHub failing to
// answer is not the repository having no branches.
func (r *Reader) Read(ctx context.Context, repo string) (Repository, error) {
	repo = strings.ToLower(repo)
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return Repository{}, fmt.Errorf("invalid repository %q: want owner/name", repo)
	}
	out := Repository{Repo: repo, Branches: map[string]string{}, Pulls: map[int]Pull{}}
	base := "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
	branches, err := list(ctx, r, base+"/branches", nil, func(page *[]*gh.Branch) []CachedItem {
		items := make([]CachedItem, 0, len(*page))
		for _, b := range *page {
			items = append(items, CachedItem{Name: b.GetName(), SHA: b.GetCommit().GetSHA()})
		}
		return items
	})
	if err != nil {
		return Repository{}, fmt.Errorf("failed to read the branches of %s: %w", repo, err)
	}
	for _, it := range branches {
		out.Branches[it.Name] = it.SHA
	}
	pulls, err := list(ctx, r, base+"/pulls", url.Values{"state": {"open"}}, func(page *[]*gh.PullRequest) []CachedItem {
		items := make([]CachedItem, 0, len(*page))
		for _, p := range *page {
			items = append(items, CachedItem{Number: p.GetNumber(), Base: p.GetBase().GetRef(), SHA: p.GetHead().GetSHA()})
		}
		return items
	})
	if err != nil {
		return Repository{}, fmt.Errorf("failed to read the pull requests of %s: %w", repo, err)
	}
	for _, it := range pulls {
		out.Pulls[it.Number] = Pull{Number: it.Number, Base: it.Base, Head: it.SHA}
	}
	return out, nil
}

// list reads every page of a list. Pages read are put in the new cache only
// once the whole list is read.
func list[T any](ctx context.Context, r *Reader, path string, query url.Values, take func(*[]T) []CachedItem) ([]CachedItem, error) {
	var items []CachedItem
	read := map[string]CachedPage{}
	for n := 1; n != 0; {
		key, p, err := page(ctx, r, path, query, n, take)
		if err != nil {
			return nil, err
		}
		read[key] = p
		items = append(items, p.Items...)
		if p.Next != 0 && p.Next <= n {
			return nil, fmt.Errorf("failed to read %s: page %d links to page %d", path, n, p.Next)
		}
		n = p.Next
	}
	maps.Copy(r.new.Pages, read)
	return items, nil
}

// page reads one page, conditionally when the cache has it.
func page[T any](ctx context.Context, r *Reader, path string, query url.Values, n int, take func(*[]T) []CachedItem) (string, CachedPage, error) {
	q := url.Values{}
	maps.Copy(q, query)
	q.Set("per_page", strconv.Itoa(PerPage))
	q.Set("page", strconv.Itoa(n))
	key := path + "?" + q.Encode()
	if r.stop != nil {
		return key, CachedPage{}, r.stop
	}
	if r.Requests >= r.max {
		return key, CachedPage{}, fmt.Errorf("%w: %d requests made (RUNBOAT_RECONCILE_MAX_REQUESTS)", ErrBudget, r.Requests)
	}
	req, err := r.client.NewRequest(http.MethodGet, key, nil)
	if err != nil {
		return key, CachedPage{}, fmt.Errorf("failed to make the request of %s: %w", key, err)
	}
	cached, isCached := r.old.Pages[key]
	if isCached && cached.ETag != "" {
		req.Header.Set("If-None-Match", cached.ETag)
	}
	r.Requests++
	var body []T
	resp, err := r.client.Do(ctx, req, &body)
	if resp != nil && resp.Response != nil {
		r.noteRate(resp)
	}
	switch {
	case err == nil:
	case resp != nil && resp.Response != nil && resp.StatusCode == http.StatusNotModified && isCached:
		r.NotModified++
		return key, cached, nil
	default:
		return key, CachedPage{}, classify(err)
	}
	return key, CachedPage{ETag: resp.Header.Get("ETag"), Next: resp.NextPage, Items: take(&body)}, nil
}

// noteRate stops the reads after this response when the rate limit is
// almost spent (the headers say so, on 304 answers too).
func (r *Reader) noteRate(resp *gh.Response) {
	if resp.Header.Get("X-RateLimit-Remaining") == "" {
		return
	}
	if resp.Rate.Remaining < RateReserve {
		r.stop = fmt.Errorf("%w: %d requests left until %s (X-RateLimit-Remaining), %d kept for commit statuses",
			ErrRateLimited, resp.Rate.Remaining, resp.Rate.Reset.UTC().Format(time.RFC3339), RateReserve)
	}
}

// classify wraps the errors of GitHub's rate limits in ErrRateLimited, with
// when to try again.
func classify(err error) error {
	var rl *gh.RateLimitError
	var abuse *gh.AbuseRateLimitError
	var resp *gh.ErrorResponse
	switch {
	case errors.As(err, &rl):
		return fmt.Errorf("%w: primary limit, reset at %s: %w", ErrRateLimited, rl.Rate.Reset.UTC().Format(time.RFC3339), err)
	case errors.As(err, &abuse):
		after := "unknown"
		if abuse.RetryAfter != nil {
			after = abuse.RetryAfter.String()
		}
		return fmt.Errorf("%w: secondary limit, retry after %s: %w", ErrRateLimited, after, err)
	case errors.As(err, &resp) && resp.Response != nil && resp.Response.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("%w: 429 Too Many Requests, Retry-After %q: %w", ErrRateLimited, resp.Response.Header.Get("Retry-After"), err)
	}
	return err
}
