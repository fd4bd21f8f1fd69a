package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v58/github"

	"runboat.dev/shared/config"
)

// Access is how the project authenticates to GitHub's REST API, as the
// configuration says: as a GitHub App's installation (RUNBOAT_GITHUB_APP_ID
// and RUNBOAT_GITHUB_PRIVATE_KEY, with RUNBOAT_GITHUB_INSTALLATION_ID or the
// installation found for each repository), with RUNBOAT_GITHUB_TOKEN, or
// anonymously; at RUNBOAT_GITHUB_API_URL. An App's installation tokens are
// minted by ghinstallation when first needed and kept until shortly before
// they expire (an hour); the JWT that mints them is signed by it too.
type Access struct {
	apiURL string
	token  string
	// app is the App's transport (JWT), nil without an App.
	app            *ghinstallation.AppsTransport
	installationID int64
	base           http.RoundTripper

	mu sync.Mutex
	// byRepo caches the installation of each repository, found once.
	byRepo        map[string]int64
	installations map[int64]*ghinstallation.Transport
}

// NewAccess returns the access cfg configures, making its requests with
// base (nil for http.DefaultTransport).
func NewAccess(cfg config.GitHub, base http.RoundTripper) (*Access, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	a := &Access{apiURL: cfg.APIURL, token: cfg.Token.Value(), installationID: cfg.InstallationID, base: base,
		byRepo: map[string]int64{}, installations: map[int64]*ghinstallation.Transport{}}
	if cfg.AppID == 0 {
		return a, nil
	}
	app, err := ghinstallation.NewAppsTransport(base, cfg.AppID, []byte(cfg.PrivateKey.Value()))
	if err != nil {
		// Its text never holds the key.
		return nil, fmt.Errorf("failed to read RUNBOAT_GITHUB_PRIVATE_KEY: %w", err)
	}
	if cfg.APIURL != "" {
		app.BaseURL = strings.TrimSuffix(cfg.APIURL, "/")
	}
	a.app, a.token = app, ""
	return a, nil
}

// App tells whether the access is a GitHub App's.
func (a *Access) App() bool { return a.app != nil }

// Anonymous tells whether requests carry no credentials.
func (a *Access) Anonymous() bool { return a.app == nil && a.token == "" }

// Client returns a go-github client of the API with this access.
func (a *Access) Client() (*gh.Client, error) {
	return NewAPIClient(&http.Client{Timeout: defaultTimeout, Transport: a}, a.token, a.apiURL)
}

// RoundTrip implements http.RoundTripper: with an App, a request is made
// with the token of the installation of the repository it is about (its
// path /repos/{owner}/{repo}/...), or of RUNBOAT_GITHUB_INSTALLATION_ID.
func (a *Access) RoundTrip(req *http.Request) (*http.Response, error) {
	if a.app == nil {
		return a.base.RoundTrip(req)
	}
	id := a.installationID
	if id == 0 {
		repo, err := a.repoOf(req.URL)
		if err != nil {
			return nil, err
		}
		if id, err = a.installationOf(req.Context(), repo); err != nil {
			return nil, err
		}
	}
	return a.installation(id).RoundTrip(req)
}

// installation returns the transport of an installation, made once.
func (a *Access) installation(id int64) *ghinstallation.Transport {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.installations[id]
	if !ok {
		t = ghinstallation.NewFromAppsTransport(a.app, id)
		a.installations[id] = t
	}
	return t
}

// repoOf is the repository a request of the API is about.
func (a *Access) repoOf(u *url.URL) (string, error) {
	path := u.Path
	if a.apiURL != "" {
		if base, err := url.Parse(a.apiURL); err == nil {
			path = strings.TrimPrefix(path, strings.TrimSuffix(base.Path, "/"))
		}
	}
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 4)
	if len(parts) < 3 || parts[0] != "repos" {
		return "", errors.New("failed to authenticate as the GitHub App: not a request about a repository, and no RUNBOAT_GITHUB_INSTALLATION_ID")
	}
	return strings.ToLower(parts[1] + "/" + parts[2]), nil
}

// installationOf finds the App's installation on repo, once.
func (a *Access) installationOf(ctx context.Context, repo string) (int64, error) {
	a.mu.Lock()
	id, ok := a.byRepo[repo]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	c, err := NewAPIClient(&http.Client{Timeout: defaultTimeout, Transport: a.app}, "", a.apiURL)
	if err != nil {
		return 0, err
	}
	owner, name, _ := strings.Cut(repo, "/")
	inst, _, err := c.Apps.FindRepositoryInstallation(ctx, owner, name)
	if err != nil {
		return 0, fmt.Errorf("failed to find the GitHub App's installation on %s: %w", repo, err)
	}
	a.mu.Lock()
	a.byRepo[repo] = inst.GetID()
	a.mu.Unlock()
	return inst.GetID(), nil
}
