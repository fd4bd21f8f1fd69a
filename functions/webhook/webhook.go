// Package webhook receives GitHub webhook deliveries and turns them into
// builds: a push to a supported branch or an opened, synchronized or
// reopened pull request deploys the build of its commit; a deleted branch or
// a closed pull request undeploys its builds.
//
// Response codes:
//
//	200 ping answered; build already deployed; builds undeployed
//	201 a new build was deployed (Location: its page, when BaseURL is set)
//	202 delivery ignored (event, action, ref or repository/branch not handled)
//	400 malformed delivery or payload, with a short reason
//	401 missing or wrong signature
//	404 any path but /webhooks/github; 405 any method but POST
//	413 body over MaxBodyBytes
//	500 the deployer failed (details in the log only)
//
// A 2xx is sent only once the deployer has returned without error. Commit
// statuses are a courtesy: one that cannot be posted is logged and changes
// nothing to the response.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	gh "github.com/google/go-github/v58/github"
	"github.com/rs/zerolog"

	"runboat.dev/functions/internal/recovery"
	"runboat.dev/shared/github"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
)

// Path is the only route of the handler.
const Path = "/webhooks/github"

// MaxBodyBytes bounds the body of a delivery. GitHub caps payloads at 25 MB;
// the events handled here are far smaller.
const MaxBodyBytes = 5 << 20

// pendingDescription is the description of the status posted on a new build.
const pendingDescription = "Build deployed, waiting for initialization"

// Deployer deploys and undeploys builds on the cluster.
type Deployer interface {
	// Deploy makes sure the build of ref exists. It returns the build name,
	// and created=true when this call created it. Concurrent calls with the
	// same ref must be safe: the deployer serializes them.
	Deploy(ctx context.Context, ref model.Ref) (name string, created bool, err error)
	// UndeployBranch undeploys the builds of a branch (not of its pull
	// requests) and returns how many.
	UndeployBranch(ctx context.Context, repo, branch string) (int, error)
	// UndeployPR undeploys the builds of a pull request and returns how many.
	UndeployPR(ctx context.Context, repo string, pr int) (int, error)
}

// Options configure the handler.
type Options struct {
	// Secret is the webhook secret; deliveries must carry its signature.
	Secret []byte
	// Insecure allows an empty Secret: signatures are then not checked.
	// Only for local development.
	Insecure bool
	// Supported tells whether builds are made for a repository (owner/name,
	// lower case) and target branch.
	Supported func(repo, targetBranch string) bool
	// Deployer acts on the cluster.
	Deployer Deployer
	// Statuses posts commit statuses (github.NoopStatusPoster to disable).
	Statuses github.StatusPoster
	// BaseURL is the root of the builds' pages, for status target URLs.
	BaseURL string
	// Logger receives one line per delivery, and the lines of the Deployer:
	// the context carries it (logging.Into), with the delivery's fields. The
	// zero value logs nothing.
	Logger zerolog.Logger
}

// Handler is the webhook http.Handler.
type Handler struct {
	opts Options
}

// New returns the handler, or every problem of opts at once.
func New(opts Options) (*Handler, error) {
	var errs []error
	if len(opts.Secret) == 0 && !opts.Insecure {
		errs = append(errs, errors.New("missing webhook secret (set it, or allow unsigned deliveries explicitly)"))
	}
	if opts.Supported == nil {
		errs = append(errs, errors.New("missing Supported function"))
	}
	if opts.Deployer == nil {
		errs = append(errs, errors.New("missing Deployer"))
	}
	if opts.Statuses == nil {
		errs = append(errs, errors.New("missing StatusPoster"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("failed to configure the webhook handler: %w", err)
	}
	if len(opts.Secret) == 0 {
		opts.Logger.Warn().Msg("webhook signatures are not checked: anyone can trigger builds")
	}
	return &Handler{opts: opts}, nil
}

// result is what came of one delivery: the response, and the fields of its
// log line.
type result struct {
	code    int
	outcome string // one word: pong, created, deployed, undeployed, ignored, refused, failed
	reason  string // short text, sent to the client
	err     error  // details, logged only
	headers map[string]string

	action, repo, branch, commit, build string
	pr, undeployed                      int
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	start := time.Now()
	eventType, deliveryID := r.Header.Get(github.HeaderEvent), r.Header.Get(github.HeaderDelivery)
	logger := h.opts.Logger.With().Str("delivery", deliveryID).Str("event", eventType).Logger()
	ctx := logging.Into(r.Context(), logger)
	defer recovery.Recover(&logger, "webhook", func() { reply(w, http.StatusInternalServerError, "internal error") })

	res := h.receive(ctx, w, r)

	for k, v := range res.headers {
		w.Header().Set(k, v)
	}
	reply(w, res.code, res.outcome+": "+res.reason)
	logResult(logger, res, time.Since(start))
}

// reply writes a short plain text response.
func reply(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text+"\n") // the client is gone if this fails
}

// receive reads, verifies and handles one delivery.
func (h *Handler) receive(ctx context.Context, w http.ResponseWriter, r *http.Request) result {
	if r.ContentLength > MaxBodyBytes {
		return refused(http.StatusRequestEntityTooLarge, "body too large", nil)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return refused(http.StatusRequestEntityTooLarge, "body too large", nil)
		}
		return refused(http.StatusBadRequest, "failed to read body", fmt.Errorf("failed to read body: %w", err))
	}
	event, _, _, err := github.ParseDelivery(r.Header, body, h.opts.Secret)
	if err != nil {
		reason := "malformed delivery"
		if de, ok := errors.AsType[*github.DeliveryError](err); ok {
			reason = de.Reason
		}
		switch {
		case errors.Is(err, github.ErrBadSignature):
			return refused(http.StatusUnauthorized, reason, err)
		case errors.Is(err, github.ErrUnknownEvent):
			return ignored("event not handled")
		default:
			return refused(http.StatusBadRequest, reason, err)
		}
	}
	res := h.handle(ctx, event)
	if a, ok := event.(interface{ GetAction() string }); ok {
		res.action = a.GetAction()
	}
	if res.repo == "" {
		res.repo = strings.ToLower(eventRepo(event))
	}
	return res
}

// eventRepo is the repository full name of an event, if it has one.
func eventRepo(event any) string {
	switch e := event.(type) {
	case *gh.PushEvent:
		return e.GetRepo().GetFullName()
	case interface{ GetRepo() *gh.Repository }:
		return e.GetRepo().GetFullName()
	}
	return ""
}

// handle dispatches a parsed event.
func (h *Handler) handle(ctx context.Context, event any) result {
	switch e := event.(type) {
	case *gh.PingEvent:
		return result{code: http.StatusOK, outcome: "pong", reason: "ping received"}
	case *gh.PushEvent:
		return h.push(ctx, e)
	case *gh.PullRequestEvent:
		return h.pullRequest(ctx, e)
	case *gh.DeleteEvent:
		return h.delete(ctx, e)
	default:
		return ignored("event not handled")
	}
}

// push deploys the pushed commit of a branch, or undeploys a deleted branch.
func (h *Handler) push(ctx context.Context, e *gh.PushEvent) result {
	repo := strings.ToLower(e.GetRepo().GetFullName())
	ref, after := e.GetRef(), e.GetAfter()
	if repo == "" || ref == "" || after == "" {
		return refused(http.StatusBadRequest, "push without ref, after or repository.full_name", nil)
	}
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		if strings.HasPrefix(ref, "refs/tags/") {
			return ignored("tag push")
		}
		return ignored("push to a ref that is not a branch")
	}
	if e.GetDeleted() {
		return h.undeploy(ctx, repo, branch, 0)
	}
	return h.deploy(ctx, repo, branch, 0, after)
}

// pullRequest deploys the head of an opened, synchronized or reopened pull
// request, and undeploys a closed one.
func (h *Handler) pullRequest(ctx context.Context, e *gh.PullRequestEvent) result {
	repo := strings.ToLower(e.GetRepo().GetFullName())
	number, base := e.GetNumber(), e.GetPullRequest().GetBase().GetRef()
	switch e.GetAction() {
	case "opened", "synchronize", "reopened":
		sha := e.GetPullRequest().GetHead().GetSHA()
		if repo == "" || number <= 0 || base == "" || sha == "" {
			return refused(http.StatusBadRequest, "pull_request without number, head.sha, base.ref or repository.full_name", nil)
		}
		return h.deploy(ctx, repo, base, number, sha)
	case "closed":
		if repo == "" || number <= 0 || base == "" {
			return refused(http.StatusBadRequest, "pull_request without number, base.ref or repository.full_name", nil)
		}
		return h.undeploy(ctx, repo, base, number)
	default:
		return ignored("pull request action not handled")
	}
}

// delete undeploys the builds of a deleted branch.
func (h *Handler) delete(ctx context.Context, e *gh.DeleteEvent) result {
	repo := strings.ToLower(e.GetRepo().GetFullName())
	ref, refType := e.GetRef(), e.GetRefType()
	if repo == "" || ref == "" || refType == "" {
		return refused(http.StatusBadRequest, "delete without ref, ref_type or repository.full_name", nil)
	}
	if refType != "branch" {
		return ignored("deleted ref is not a branch")
	}
	return h.undeploy(ctx, repo, ref, 0)
}

// deploy deploys the build of a commit, and posts a pending status when the
// build is new.
func (h *Handler) deploy(ctx context.Context, repo, branch string, pr int, sha string) result {
	res := result{repo: repo, branch: branch, pr: pr, commit: sha}
	ref, err := model.NewRef(repo, branch, pr, sha)
	if err != nil {
		return res.with(refused(http.StatusBadRequest, "invalid repository, branch or commit", err))
	}
	res.repo, res.commit = ref.Repo, ref.Commit
	if !h.opts.Supported(ref.Repo, ref.TargetBranch) {
		return res.with(ignored("repository or branch not supported"))
	}
	// The deployer's lines say which build they are about, and the
	// initializer pass the function may run after it adds the fields of each
	// build it acts on: the context keeps the delivery's fields only.
	name, created, err := h.opts.Deployer.Deploy(ctx, ref)
	if err != nil {
		return res.with(failed(fmt.Errorf("failed to deploy build: %w", err)))
	}
	res.build = name
	if !created {
		res.code, res.outcome, res.reason = http.StatusOK, "deployed", "build "+name+" already deployed"
		return res
	}
	github.NotifyStatus(logging.WithBuild(ctx, ref, name), h.opts.Statuses, ref.Repo, ref.Commit, github.StatusPending,
		github.LiveURL(h.opts.BaseURL, name), pendingDescription)
	res.code, res.outcome, res.reason = http.StatusCreated, "created", "build "+name+" deployed"
	if page := github.TargetURL(h.opts.BaseURL, name); page != "" {
		res.headers = map[string]string{"Location": page}
	}
	return res
}

// undeploy undeploys the builds of a supported branch (pr 0: the branch
// builds) or of a pull request on it.
func (h *Handler) undeploy(ctx context.Context, repo, branch string, pr int) result {
	res := result{repo: repo, branch: branch, pr: pr}
	// The repository and branch are validated exactly as deploy does.
	if err := errors.Join(model.ValidateRepo(repo), model.ValidateBranch(branch)); err != nil {
		return res.with(refused(http.StatusBadRequest, "invalid repository or branch", err))
	}
	if !h.opts.Supported(repo, branch) {
		return res.with(ignored("repository or branch not supported"))
	}
	logger := logging.From(ctx).With().Str("repo", repo)
	var (
		what = "branch"
		n    int
		err  error
	)
	if pr == 0 {
		ctx = logging.Into(ctx, logger.Str("target_branch", branch).Logger())
		n, err = h.opts.Deployer.UndeployBranch(ctx, repo, branch)
	} else {
		ctx = logging.Into(ctx, logger.Int("pr", pr).Logger())
		what = "pull request"
		n, err = h.opts.Deployer.UndeployPR(ctx, repo, pr)
	}
	if err != nil {
		return res.with(failed(fmt.Errorf("failed to undeploy %s builds: %w", what, err)))
	}
	res.code, res.outcome, res.reason, res.undeployed = http.StatusOK, "undeployed", fmt.Sprintf("%d build(s) undeployed", n), n
	return res
}

// with returns res with the response fields of o.
func (res result) with(o result) result {
	res.code, res.outcome, res.reason, res.err = o.code, o.outcome, o.reason, o.err
	return res
}

func refused(code int, reason string, err error) result {
	return result{code: code, outcome: "refused", reason: reason, err: err}
}

func ignored(reason string) result {
	return result{code: http.StatusAccepted, outcome: "ignored", reason: reason}
}

func failed(err error) result {
	return result{code: http.StatusInternalServerError, outcome: "failed", reason: "internal error", err: err}
}

// logResult writes the one log line of a delivery.
func logResult(logger zerolog.Logger, res result, elapsed time.Duration) {
	var ev *zerolog.Event
	switch {
	case res.code >= http.StatusInternalServerError:
		ev = logger.Error()
	case res.code >= http.StatusBadRequest:
		ev = logger.Warn()
	default:
		ev = logger.Info()
	}
	ev = ev.Int("status", res.code).Str("outcome", res.outcome).Str("reason", res.reason).Dur("elapsed", elapsed)
	for _, f := range [][2]string{{"action", res.action}, {"repo", res.repo}, {"branch", res.branch}, {"commit", res.commit}, {"build", res.build}} {
		if f[1] != "" {
			ev = ev.Str(f[0], f[1])
		}
	}
	if res.pr != 0 {
		ev = ev.Int("pr", res.pr)
	}
	if res.outcome == "undeployed" {
		ev = ev.Int("undeployed", res.undeployed)
	}
	ev.Err(res.err).Msg("webhook delivery")
}
