package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v58/github"

	"runboat.dev/shared/logging"
	"runboat.dev/shared/text"
)

// StatusContext is the context of every commit status posted, as runboat's.
const StatusContext = "runboat/build"

// maxDescription is GitHub's limit on a commit status description.
const maxDescription = 140

// defaultTimeout bounds one call when no HTTP client is given.
const defaultTimeout = 10 * time.Second

// StatusState is the state of a commit status.
type StatusState string

// The states GitHub accepts.
const (
	StatusPending StatusState = "pending"
	StatusSuccess StatusState = "success"
	StatusFailure StatusState = "failure"
	StatusError   StatusState = "error"
)

// Valid reports whether s is one of the states GitHub accepts.
func (s StatusState) Valid() bool {
	switch s {
	case StatusPending, StatusSuccess, StatusFailure, StatusError:
		return true
	}
	return false
}

// StatusPoster posts the commit status of a build.
type StatusPoster interface {
	// PostStatus sets the runboat/build status of commit sha of repo
	// (owner/name).
	PostStatus(ctx context.Context, repo, sha string, state StatusState, targetURL, description string) error
}

// TargetURL is the page of a build, <baseURL>/builds/<name>, used as the
// target of its commit statuses. It is empty when baseURL is, so that a
// status is posted without a link rather than with a relative one.
func TargetURL(baseURL, buildName string) string {
	if baseURL == "" {
		return ""
	}
	return strings.TrimSuffix(baseURL, "/") + "/builds/" + url.PathEscape(buildName)
}

// LiveURL is the target of a build's commit statuses: its page with ?live,
// which starts the build if it is stopped and sends the reviewer to it once
// it runs. Empty when baseURL is.
func LiveURL(baseURL, buildName string) string {
	u := TargetURL(baseURL, buildName)
	if u == "" {
		return ""
	}
	return u + "?live"
}

// Client posts commit statuses with the GitHub REST API.
type Client struct {
	client *gh.Client
}

var _ StatusPoster = (*Client)(nil)

// NewClient returns a Client authenticated with token. apiBaseURL is the
// REST API root, empty for https://api.github.com/ (tests point it at an
// httptest server). A nil httpClient gets one with a short timeout.
func NewClient(httpClient *http.Client, token, apiBaseURL string) (*Client, error) {
	if token == "" {
		return nil, errors.New("missing GitHub token")
	}
	c, err := NewAPIClient(httpClient, token, apiBaseURL)
	if err != nil {
		return nil, err
	}
	return &Client{client: c}, nil
}

// NewAPIClient returns a go-github client of the REST API at apiBaseURL
// (empty for https://api.github.com/), authenticated with token unless it
// is empty (anonymous calls). A nil httpClient gets one with a short
// timeout.
func NewAPIClient(httpClient *http.Client, token, apiBaseURL string) (*gh.Client, error) {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: defaultTimeout}
	}
	c := gh.NewClient(httpClient)
	if token != "" {
		c = c.WithAuthToken(token)
	}
	if apiBaseURL != "" {
		if !strings.HasSuffix(apiBaseURL, "/") {
			apiBaseURL += "/"
		}
		u, err := url.Parse(apiBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("invalid GitHub API URL: want an http:// or https:// URL")
		}
		c.BaseURL = u
	}
	return c, nil
}

// PostStatus implements StatusPoster. The description is cut to GitHub's
// limit of 140 characters.
func (c *Client) PostStatus(ctx context.Context, repo, sha string, state StatusState, targetURL, description string) error {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("invalid repository %q: want owner/name", repo)
	}
	if !state.Valid() {
		return fmt.Errorf("invalid commit status state %q", state)
	}
	status := &gh.RepoStatus{
		State:   gh.String(string(state)),
		Context: gh.String(StatusContext),
	}
	if targetURL != "" {
		status.TargetURL = gh.String(targetURL)
	}
	if description != "" {
		status.Description = gh.String(text.Truncate(description, maxDescription, text.Runes))
	}
	if _, _, err := c.client.Repositories.CreateStatus(ctx, owner, name, sha, status); err != nil {
		return fmt.Errorf("failed to post %s status of %s@%s: %w", state, repo, sha, err)
	}
	return nil
}

// NoopStatusPoster posts nothing: the StatusPoster used when commit statuses
// are disabled (DISABLE_COMMIT_STATUSES).
type NoopStatusPoster struct{}

var _ StatusPoster = NoopStatusPoster{}

// PostStatus implements StatusPoster by doing nothing.
func (NoopStatusPoster) PostStatus(context.Context, string, string, StatusState, string, string) error {
	return nil
}

// NotifyStatus posts a commit status and logs the outcome. A status is a
// courtesy to the people watching the commit: failing to post one must never
// fail the work it reports on, so NotifyStatus logs the error (as a warning)
// and returns nothing, in the log carried by ctx, which says which build
// the status is about (logging.WithBuild): the lines add only the state.
func NotifyStatus(ctx context.Context, poster StatusPoster, repo, sha string, state StatusState, targetURL, description string) {
	logger := logging.From(ctx)
	if err := poster.PostStatus(ctx, repo, sha, state, targetURL, description); err != nil {
		logger.Warn().Err(err).Str("state", string(state)).Msg("commit status not posted")
		return
	}
	logger.Debug().Str("state", string(state)).Msg("commit status posted")
}
