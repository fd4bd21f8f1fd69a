// Package console is the console of runboat: the REST API under /api/v1
// (the Python runboat's paths, fields and answers, so that existing scripts
// keep working), the web UI (a home page, a page per repository, a page per
// build), the wake-on-click page that the commit statuses link to
// (/builds/{name}?live) and the Python runboat's page addresses. It reads
// the cluster on every request: nothing is cached, so nothing can drift.
//
// API (JSON unless said otherwise; errors are {"detail": "reason"}):
//
//	GET    /api/v1/status                  counts of builds by status, and the quotas
//	GET    /api/v1/repos                   repositories that have builds
//	GET    /api/v1/builds                  builds, filtered by repo, target_branch,
//	                                       branch (branch builds only), pr, status;
//	                                       null fields left out, as runboat's; 400 on a
//	                                       bad filter
//	DELETE /api/v1/builds                  admin: undeploy the builds matching repo,
//	                                       target_branch, branch, pr (at least one,
//	                                       else 400); 200 null
//	POST   /api/v1/builds/trigger/branch   admin: ?repo&branch, deploy the head of a
//	                                       branch: 200 null (Location: the build's
//	                                       page when new), 400, 404 (not on GitHub),
//	                                       502 (GitHub failed)
//	POST   /api/v1/builds/trigger/pr       admin: ?repo&pr, the same for a pull request
//	GET    /api/v1/build-events            Server-Sent Events, as runboat's: {"event": "upd"
//	                                       or "del", "build": {...}}, first an "upd" of every
//	                                       build matching repo, target_branch, branch, pr,
//	                                       build_name, then each change; ": ping" every 15 s
//	GET    /api/v1/builds/{name}           one build (null fields kept); 404 when unknown
//	GET    /api/v1/builds/{name}/init-log  HTML with colours: the init log (kept on
//	                                       the cluster for a failed build); 404 "No log found."
//	                                       when none; 502 when the pod's log exists
//	                                       but the API server cannot give it
//	GET    /api/v1/builds/{name}/log       HTML: the log of the running build; 404
//	                                       and 502 as init-log
//	POST   /api/v1/builds/{name}/start     start a stopped build (otherwise nothing); 200 null
//	POST   /api/v1/builds/{name}/stop      stop a started or starting build (otherwise
//	                                       nothing); 200 null
//	POST   /api/v1/builds/{name}/reset     initialize a build again; 200 null; 429 with
//	                                       Retry-After when it was reset less than the
//	                                       reset interval ago, 409 when it is being
//	                                       undeployed
//	DELETE /api/v1/builds/{name}           admin: undeploy a build; 200 null
//
// The OpenAPI document of the API is GET /openapi.json (openapi.yaml), and
// GET /docs a page made from it.
//
// Admin endpoints need HTTP basic credentials (401 otherwise). A failure of
// the cluster gives 500 with a generic reason; details go to the log only.
// Browsers may not POST or DELETE from another site (403).
//
// Web UI (HTML, kept up to date by a small script that reloads the page's
// body on each event of the build events stream, and polls it every 2.5 s
// when the stream is not open):
//
//	GET  /                          repositories and status counts
//	GET  /repos/{owner}/{repo}      the builds of a repository, grouped by branch and
//	                                PR; ?target_branch, ?branch, ?pr keep some (400
//	                                on a bad one)
//	GET  /builds/{name}             the page of a build
//	GET  /builds/{name}?live        wake-on-click: redirects to a started build (302);
//	                                for a stopped one, a page that starts it with a
//	                                POST (its script at once, or its button) and
//	                                follows it until it is started: a GET changes
//	                                nothing, so that bots wake no build; says why
//	                                for a failed (200), undeploying (410) or
//	                                unknown (404) build
//	POST /builds/{name}?live        the button of that page: starts the build, 303
//	                                back to the page
//
// The Python runboat's addresses: GET /builds?repo&target_branch&branch&pr
// (the link of the "Try me" badges) answers 307 to the repository page with
// the same filters (400 on a bad one; the home page without repo);
// /webui/builds.html?repo&target_branch&branch&pr and
// /webui/build.html?name= redirect (301) to the repository page with its
// filters and to the build page.
//
// The differences from the Python runboat that remain, and why, are listed
// in the README (section "The console").
package console

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"runboat.dev/functions/internal/recovery"
	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
)

// DefaultResetInterval is the shortest time between two resets of a build
// when Options.ResetInterval is zero.
const DefaultResetInterval = 10 * time.Minute

// Default URL patterns of a build and of its mailhog, as the Python runboat's.
const (
	DefaultBuildURLPattern = "http://{slug}.{domain}"
	DefaultMailURLPattern  = "http://{slug}.mail.{domain}"
)

// Operations change builds on the cluster (FromOps adapts package ops).
// Each takes a build name (the runboat/build label) and must return an error
// wrapping ErrNotFound when the build has no Deployment.
type Operations interface {
	// Start scales a build up.
	Start(ctx context.Context, name string) error
	// Stop scales a build down.
	Stop(ctx context.Context, name string) error
	// Reset makes a build initialize again.
	Reset(ctx context.Context, name string) error
	// Undeploy deletes a build's Deployment; its cleanup runs afterwards.
	Undeploy(ctx context.Context, name string) error
}

// ErrNotFound is wrapped by the errors of Operations on a build that does
// not exist: the one of package ops.
var ErrNotFound = ops.ErrNotFound

// Deployer deploys the build of a commit (the trigger endpoints).
type Deployer interface {
	// Deploy makes sure the build of ref exists and returns its name, with
	// created=true when this call created it.
	Deploy(ctx context.Context, ref model.Ref) (name string, created bool, err error)
}

// Options configure the console.
type Options struct {
	// Client reads the builds namespace (Deployments, ConfigMaps, Pods and
	// their logs) and records resets (patch of Deployments).
	Client kube.Interface
	// Namespace is the builds namespace.
	Namespace string
	// Ops starts, stops, resets and undeploys builds.
	Ops Operations
	// Deployer deploys the builds asked for by the trigger endpoints.
	Deployer Deployer
	// Quotas are shown by /api/v1/status.
	Quotas config.Quotas
	// BaseURL is where the console is exposed (RUNBOAT_BASE_URL): the
	// webui_link of a build is BaseURL/builds/<name>. Empty gives relative
	// links.
	BaseURL string
	// BuildDomain is the wildcard domain of the builds (RUNBOAT_BUILD_DOMAIN).
	BuildDomain string
	// BuildURLPattern and MailURLPattern are the URLs of a started build and
	// of its mailhog, with {slug} and {domain} replaced; empty means
	// DefaultBuildURLPattern and DefaultMailURLPattern.
	BuildURLPattern, MailURLPattern string
	// AdminUser and AdminPasswd protect undeploy and trigger (HTTP basic).
	// Both are required.
	AdminUser   string
	AdminPasswd config.Secret
	// GitHubToken authenticates the calls of the trigger endpoints to the
	// GitHub API; empty means anonymous calls.
	GitHubToken config.Secret
	// GitHubAPIURL is the GitHub REST API root; empty means
	// https://api.github.com/.
	GitHubAPIURL string
	// HTTPClient makes the GitHub calls; nil means one with a 10 s timeout.
	HTTPClient *http.Client
	// GitHubAccess, when set, is how the trigger endpoints call GitHub (a
	// token or a GitHub App, at its API URL), in place of GitHubToken,
	// GitHubAPIURL and HTTPClient.
	GitHubAccess *github.Access
	// ResetInterval is the shortest time between two resets of a build;
	// zero means DefaultResetInterval.
	ResetInterval time.Duration
	// PollInterval is how often the pages refresh; zero means 2.5 s.
	PollInterval time.Duration
	// KeepAlive is the period of the comment lines of an idle build events
	// stream; zero means DefaultKeepAlive.
	KeepAlive time.Duration
	// Clock tells the time; nil means the real clock.
	Clock clock.PassiveClock
	// Logger receives errors and actions; the zero value logs nothing.
	Logger zerolog.Logger
}

// Handler is the console http.Handler.
type Handler struct {
	opts   Options
	mux    *http.ServeMux
	csrf   http.Handler
	gh     *githubClient
	assets assets
	pages  *pages
}

// New returns the console, or every problem of opts at once.
func New(opts Options) (*Handler, error) {
	var errs []error
	if opts.Client == nil {
		errs = append(errs, errors.New("missing Kubernetes client"))
	}
	if opts.Namespace == "" {
		errs = append(errs, errors.New("missing builds namespace"))
	}
	if opts.Ops == nil {
		errs = append(errs, errors.New("missing Operations"))
	}
	if opts.Deployer == nil {
		errs = append(errs, errors.New("missing Deployer"))
	}
	if opts.AdminUser == "" || opts.AdminPasswd == "" {
		errs = append(errs, errors.New("missing admin user or password"))
	}
	if opts.BuildURLPattern == "" {
		opts.BuildURLPattern = DefaultBuildURLPattern
	}
	if opts.MailURLPattern == "" {
		opts.MailURLPattern = DefaultMailURLPattern
	}
	for _, p := range []struct{ name, pattern string }{{"build URL pattern", opts.BuildURLPattern}, {"mail URL pattern", opts.MailURLPattern}} {
		if err := checkURLPattern(p.pattern, opts.BuildDomain); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s: %w", p.name, err))
		}
	}
	if opts.BaseURL != "" {
		if u, err := url.Parse(opts.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("invalid base URL: want an http:// or https:// URL"))
		}
		opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	}
	if opts.ResetInterval < 0 {
		errs = append(errs, fmt.Errorf("invalid reset interval %s", opts.ResetInterval))
	}
	if opts.ResetInterval == 0 {
		opts.ResetInterval = DefaultResetInterval
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2500 * time.Millisecond
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	gh, err := newGitHubClient(opts.HTTPClient, opts.GitHubToken.Value(), opts.GitHubAPIURL)
	if opts.GitHubAccess != nil {
		gh, err = accessGitHubClient(opts.GitHubAccess)
	}
	if err != nil {
		errs = append(errs, err)
	}
	a, err := loadAssets()
	if err != nil {
		errs = append(errs, err)
	}
	pg, err := newPages()
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("failed to configure the console: %w", err)
	}
	h := &Handler{opts: opts, gh: gh, assets: a, pages: pg}
	h.routes()
	return h, nil
}

// checkURLPattern checks that a URL pattern holds {slug} and gives an http
// or https URL with a host.
func checkURLPattern(pattern, domain string) error {
	if !strings.Contains(pattern, "{slug}") {
		return errors.New("want {slug} in it")
	}
	if strings.Contains(pattern, "{domain}") && domain == "" {
		return errors.New("it uses {domain} but the build domain is empty")
	}
	u, err := url.Parse(expandURL(pattern, "slug", domain))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http:// or https:// URL with a host")
	}
	return nil
}

func expandURL(pattern, slug, domain string) string {
	return strings.NewReplacer("{slug}", slug, "{domain}", domain).Replace(pattern)
}

// routes registers the endpoints.
func (h *Handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /api/v1/status", h.apiStatus)
	m.HandleFunc("GET /api/v1/repos", h.apiRepos)
	m.HandleFunc("GET /api/v1/builds", h.apiBuilds)
	m.HandleFunc("DELETE /api/v1/builds", h.admin(h.apiUndeployBuilds))
	m.HandleFunc("POST /api/v1/builds/trigger/branch", h.admin(h.apiTriggerBranch))
	m.HandleFunc("POST /api/v1/builds/trigger/pr", h.admin(h.apiTriggerPR))
	m.HandleFunc("GET /api/v1/build-events", h.apiBuildEvents)
	m.HandleFunc("GET /api/v1/builds/{name}", h.apiBuild)
	m.HandleFunc("DELETE /api/v1/builds/{name}", h.admin(h.apiUndeploy))
	m.HandleFunc("GET /api/v1/builds/{name}/init-log", h.apiLog(h.initLog))
	m.HandleFunc("GET /api/v1/builds/{name}/log", h.apiLog(h.runLog))
	m.HandleFunc("POST /api/v1/builds/{name}/start", h.apiScale(starting))
	m.HandleFunc("POST /api/v1/builds/{name}/stop", h.apiScale(stopping))
	m.HandleFunc("POST /api/v1/builds/{name}/reset", h.apiReset)

	m.HandleFunc("GET /{$}", h.pageHome)
	m.HandleFunc("GET /repos/{owner}/{repo}", h.pageRepo)
	m.HandleFunc("GET /builds/{name}", h.pageBuild)
	m.HandleFunc("POST /builds/{name}", h.wakePost)
	m.HandleFunc("GET /builds", h.badges)
	m.HandleFunc("GET /static/{file}", h.static)
	m.HandleFunc("GET /openapi.json", h.openAPI)
	m.HandleFunc("GET /docs", h.docs)
	// The Python runboat's page addresses.
	m.HandleFunc("GET /webui/builds.html", h.legacyBuilds)
	m.HandleFunc("GET /webui/build.html", h.legacyBuild)
	h.mux = m
	// Browsers may not send a POST or DELETE from another site: a page
	// elsewhere cannot act with the admin credentials a browser holds.
	// Scripts, which send no Sec-Fetch-Site nor Origin, are not concerned.
	h.csrf = http.NewCrossOriginProtection().Handler(m)
}

// ServeHTTP implements http.Handler: it puts a request logger in the
// context, sets the security headers and turns a panic into a 500.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := h.opts.Logger.With().Str("method", r.Method).Str("path", r.URL.Path).Logger()
	ctx := logging.Into(r.Context(), logger)
	r = r.WithContext(ctx)
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	defer recovery.Recover(&logger, "console", func() { writeError(w, http.StatusInternalServerError, "internal error") })
	h.csrf.ServeHTTP(w, r)
}

// logFrom is the request logger.
func logFrom(ctx context.Context) *zerolog.Logger { return logging.From(ctx) }

// versioned returns the address of a static file with a hash of its
// content, so that browsers may cache it for long.
func versioned(name string, content []byte) string {
	sum := sha256.Sum256(content)
	return fmt.Sprintf("/static/%s?v=%x", name, sum[:6])
}
