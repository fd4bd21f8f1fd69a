package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v58/github"

	"runboat.dev/shared/github"
	"runboat.dev/shared/model"
	"runboat.dev/shared/render"
)

// admin wraps a handler that needs the admin credentials (HTTP basic).
// Both the user and the password are compared in constant time, through
// their hashes so that their lengths do not show either.
func (h *Handler) admin(next http.HandlerFunc) http.HandlerFunc {
	wantUser := sha256.Sum256([]byte(h.opts.AdminUser))
	wantPasswd := sha256.Sum256([]byte(h.opts.AdminPasswd.Value()))
	return func(w http.ResponseWriter, r *http.Request) {
		user, passwd, ok := r.BasicAuth()
		gotUser, gotPasswd := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(passwd))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passwdOK := subtle.ConstantTimeCompare(gotPasswd[:], wantPasswd[:])
		if !ok || userOK&passwdOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="runboat", charset="UTF-8"`)
			detail := "Not authenticated"
			if ok {
				detail = "Incorrect username or password"
				logFrom(r.Context()).Warn().Msg("admin credentials refused")
			}
			writeError(w, http.StatusUnauthorized, detail)
			return
		}
		next(w, r)
	}
}

// githubClient asks GitHub for the head commits of branches and pull
// requests.
type githubClient struct {
	client *gh.Client
}

// accessGitHubClient is the client of the trigger endpoints with access.
func accessGitHubClient(access *github.Access) (*githubClient, error) {
	c, err := access.Client()
	if err != nil {
		return nil, err
	}
	return &githubClient{client: c}, nil
}

func newGitHubClient(httpClient *http.Client, token, apiURL string) (*githubClient, error) {
	c, err := github.NewAPIClient(httpClient, token, apiURL)
	if err != nil {
		return nil, err
	}
	return &githubClient{client: c}, nil
}

// errGitHubNotFound is returned when GitHub has no such branch or pull
// request (or no such repository, or none visible to the token).
var errGitHubNotFound = errors.New("not found on GitHub")

// splitRepo splits owner/name.
func splitRepo(repo string) (string, string) {
	owner, name, _ := strings.Cut(repo, "/")
	return owner, name
}

// githubErr tells a 404 from the other failures.
func githubErr(err error, what string) error {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w", what, errGitHubNotFound)
	}
	return fmt.Errorf("failed to read %s from GitHub: %w", what, err)
}

// branchHead returns the head commit of a branch.
func (g *githubClient) branchHead(ctx context.Context, repo, branch string) (string, error) {
	owner, name := splitRepo(repo)
	ref, _, err := g.client.Git.GetRef(ctx, owner, name, "heads/"+branch)
	if err != nil {
		return "", githubErr(err, "branch "+branch+" of "+repo)
	}
	return ref.GetObject().GetSHA(), nil
}

// prHead returns the head commit, the target branch and the base
// repository of a pull request.
func (g *githubClient) prHead(ctx context.Context, repo string, pr int) (sha, base, baseRepo string, err error) {
	owner, name := splitRepo(repo)
	p, _, err := g.client.PullRequests.Get(ctx, owner, name, pr)
	if err != nil {
		return "", "", "", githubErr(err, "pull request "+strconv.Itoa(pr)+" of "+repo)
	}
	return p.GetHead().GetSHA(), p.GetBase().GetRef(), p.GetBase().GetRepo().GetFullName(), nil
}

func (h *Handler) apiTriggerBranch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	repo, branch := strings.ToLower(q.Get("repo")), q.Get("branch")
	problems := checkRepo(repo)
	switch {
	case branch == "":
		problems = append(problems, "missing branch")
	case !validBranch(branch):
		problems = append(problems, "invalid branch: want a branch name of at most 1024 bytes of UTF-8")
	}
	if len(problems) > 0 {
		fail(w, r, badRequest("%s", strings.Join(problems, "; ")))
		return
	}
	sha, err := h.gh.branchHead(r.Context(), repo, branch)
	if err != nil {
		h.triggerFailed(w, r, err)
		return
	}
	h.trigger(w, r, repo, branch, 0, sha)
}

func (h *Handler) apiTriggerPR(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	repo, prs := strings.ToLower(q.Get("repo")), q.Get("pr")
	problems := checkRepo(repo)
	pr, err := strconv.Atoi(prs)
	switch {
	case prs == "":
		problems = append(problems, "missing pr")
	case err != nil || pr < 1:
		problems = append(problems, fmt.Sprintf("invalid pr %q: want a pull request number", prs))
	}
	if len(problems) > 0 {
		fail(w, r, badRequest("%s", strings.Join(problems, "; ")))
		return
	}
	sha, base, baseRepo, err := h.gh.prHead(r.Context(), repo, pr)
	if err != nil {
		h.triggerFailed(w, r, err)
		return
	}
	if baseRepo != "" {
		repo = strings.ToLower(baseRepo)
	}
	h.trigger(w, r, repo, base, pr, sha)
}

// checkRepo validates the repo parameter of a trigger.
func checkRepo(repo string) []string {
	if repo == "" {
		return []string{"missing repo"}
	}
	if err := model.ValidateRepo(repo); err != nil {
		return []string{fmt.Sprintf("invalid repo %q: want owner/name", repo)}
	}
	return nil
}

// validBranch tells whether a branch name can make a build.
func validBranch(branch string) bool {
	return model.ValidateBranch(branch) == nil
}

// triggerFailed answers a failure to ask GitHub.
func (h *Handler) triggerFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errGitHubNotFound) {
		writeError(w, http.StatusNotFound, "not found on GitHub")
		return
	}
	logFrom(r.Context()).Error().Err(err).Msg("GitHub call failed")
	writeError(w, http.StatusBadGateway, "failed to ask GitHub for the head commit")
}

// trigger deploys the build of a commit.
func (h *Handler) trigger(w http.ResponseWriter, r *http.Request, repo, branch string, pr int, sha string) {
	ctx := r.Context()
	ref, err := model.NewRef(repo, branch, pr, sha)
	if err != nil {
		logFrom(ctx).Error().Err(err).Msg("GitHub answered an invalid commit")
		writeError(w, http.StatusBadGateway, "GitHub answered an invalid commit or branch")
		return
	}
	name, created, err := h.opts.Deployer.Deploy(ctx, ref)
	switch {
	case errors.Is(err, render.ErrUnsupported):
		writeError(w, http.StatusBadRequest, "no build is configured for this repository and branch")
		return
	case err != nil:
		fail(w, r, fmt.Errorf("failed to deploy %s: %w", ref.Repo, err))
		return
	}
	logFrom(ctx).Info().Str("build", name).Str("repo", ref.Repo).Str("target_branch", ref.TargetBranch).
		Int("pr", ref.PR).Str("commit", ref.Commit).Bool("created", created).Msg("build triggered")
	// 200 with null, as the Python runboat (scripts check for 200); a new
	// build's page is in Location.
	if created {
		w.Header().Set("Location", github.TargetURL(h.opts.BaseURL, name))
		if h.opts.BaseURL == "" {
			w.Header().Set("Location", "/builds/"+url.PathEscape(name))
		}
	}
	writeJSON(w, http.StatusOK, nil)
}
