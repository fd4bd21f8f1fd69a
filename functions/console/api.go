package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"runboat.dev/shared/model"
)

// githubURL is the root of the links to GitHub.
const githubURL = "https://github.com/"

// links are the addresses shown for a build.
type links struct {
	Deploy, Mail         string // the started build and its mailhog
	TargetBranch, PR     string // on GitHub; PR empty for a branch build
	Commit               string // on GitHub
	WebUI                string // the build's page, absolute when BaseURL is set
	Page, Live           string // the build's page and its wake-on-click, relative
	InitLog, Log, APIURL string // API addresses, relative
}

// escapePath escapes each segment of a slash separated path.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// linksOf returns the links of a build, as the Python runboat makes them.
func (h *Handler) linksOf(b model.Build) links {
	slug := b.Ref.Slug()
	repo := githubURL + escapePath(b.Ref.Repo)
	name := url.PathEscape(b.Name)
	l := links{
		Deploy:       expandURL(h.opts.BuildURLPattern, slug, h.opts.BuildDomain),
		Mail:         expandURL(h.opts.MailURLPattern, slug, h.opts.BuildDomain),
		TargetBranch: repo + "/tree/" + escapePath(b.Ref.TargetBranch),
		Commit:       repo + "/commit/" + b.Ref.Commit,
		WebUI:        h.opts.BaseURL + "/builds/" + name,
		Page:         "/builds/" + name,
		Live:         "/builds/" + name + "?live",
		InitLog:      "/api/v1/builds/" + name + "/init-log",
		Log:          "/api/v1/builds/" + name + "/log",
		APIURL:       "/api/v1/builds/" + name,
	}
	if b.Ref.PR != 0 {
		l.PR = repo + "/pull/" + strconv.Itoa(b.Ref.PR)
		l.Commit = l.PR + "/commits/" + b.Ref.Commit
	}
	return l
}

// commitInfoJSON is the Python runboat's commit_info.
type commitInfoJSON struct {
	Repo         string `json:"repo"`
	TargetBranch string `json:"target_branch"`
	PR           *int   `json:"pr"`
	GitCommit    string `json:"git_commit"`
}

// buildJSON is a build in the API: the Python runboat's fields, then the
// fields this project adds.
type buildJSON struct {
	Name                 string         `json:"name"`
	CommitInfo           commitInfoJSON `json:"commit_info"`
	DeployLink           string         `json:"deploy_link"`
	DeployLinkMailhog    string         `json:"deploy_link_mailhog"`
	RepoTargetBranchLink string         `json:"repo_target_branch_link"`
	RepoPRLink           *string        `json:"repo_pr_link"`
	RepoCommitLink       string         `json:"repo_commit_link"`
	WebUILink            string         `json:"webui_link"`
	Status               model.Status   `json:"status"`
	Created              time.Time      `json:"created"`
	LastScaled           time.Time      `json:"last_scaled"`

	// Added by this project.
	Slug       string     `json:"slug"`
	InitStatus string     `json:"init_status"`
	InitReason string     `json:"init_failure_reason,omitempty"`
	LastReset  *time.Time `json:"last_reset,omitempty"`
}

// buildItemJSON is a build in a list: buildJSON without its null fields,
// as the Python runboat's list (which excludes None).
type buildItemJSON struct {
	Name       string `json:"name"`
	CommitInfo struct {
		Repo         string `json:"repo"`
		TargetBranch string `json:"target_branch"`
		PR           *int   `json:"pr,omitempty"`
		GitCommit    string `json:"git_commit"`
	} `json:"commit_info"`
	DeployLink           string       `json:"deploy_link"`
	DeployLinkMailhog    string       `json:"deploy_link_mailhog"`
	RepoTargetBranchLink string       `json:"repo_target_branch_link"`
	RepoPRLink           *string      `json:"repo_pr_link,omitempty"`
	RepoCommitLink       string       `json:"repo_commit_link"`
	WebUILink            string       `json:"webui_link"`
	Status               model.Status `json:"status"`
	Created              time.Time    `json:"created"`
	LastScaled           time.Time    `json:"last_scaled"`

	Slug       string     `json:"slug"`
	InitStatus string     `json:"init_status"`
	InitReason string     `json:"init_failure_reason,omitempty"`
	LastReset  *time.Time `json:"last_reset,omitempty"`
}

// item is the list form of a build.
func (b buildJSON) item() buildItemJSON {
	out := buildItemJSON{
		Name:                 b.Name,
		DeployLink:           b.DeployLink,
		DeployLinkMailhog:    b.DeployLinkMailhog,
		RepoTargetBranchLink: b.RepoTargetBranchLink,
		RepoPRLink:           b.RepoPRLink,
		RepoCommitLink:       b.RepoCommitLink,
		WebUILink:            b.WebUILink,
		Status:               b.Status,
		Created:              b.Created,
		LastScaled:           b.LastScaled,
		Slug:                 b.Slug,
		InitStatus:           b.InitStatus,
		InitReason:           b.InitReason,
		LastReset:            b.LastReset,
	}
	out.CommitInfo.Repo = b.CommitInfo.Repo
	out.CommitInfo.TargetBranch = b.CommitInfo.TargetBranch
	out.CommitInfo.PR = b.CommitInfo.PR
	out.CommitInfo.GitCommit = b.CommitInfo.GitCommit
	return out
}

// toJSON is the API form of a build.
func (h *Handler) toJSON(b buildInfo) buildJSON {
	l := h.linksOf(b.Build)
	out := buildJSON{
		Name: b.Name,
		CommitInfo: commitInfoJSON{
			Repo:         b.Ref.Repo,
			TargetBranch: b.Ref.TargetBranch,
			GitCommit:    b.Ref.Commit,
		},
		DeployLink:           l.Deploy,
		DeployLinkMailhog:    l.Mail,
		RepoTargetBranchLink: l.TargetBranch,
		RepoCommitLink:       l.Commit,
		WebUILink:            l.WebUI,
		Status:               b.Status,
		Created:              b.Created.UTC(),
		LastScaled:           b.LastScaled.UTC(),
		Slug:                 b.Ref.Slug(),
		InitStatus:           string(b.InitStatus),
		InitReason:           b.Reason,
	}
	if b.Ref.PR != 0 {
		pr := b.Ref.PR
		out.CommitInfo.PR = &pr
		out.RepoPRLink = &l.PR
	}
	if !b.LastReset.IsZero() {
		t := b.LastReset.UTC()
		out.LastReset = &t
	}
	return out
}

// writeJSON writes v as the JSON response.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only the types of this package are written; they always marshal.
		code, body = http.StatusInternalServerError, []byte(`{"detail":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n')) // the client is gone if this fails
}

// errorJSON is the body of an error, as FastAPI's.
type errorJSON struct {
	Detail string `json:"detail"`
}

// writeError writes an API error.
func writeError(w http.ResponseWriter, code int, detail string) {
	writeJSON(w, code, errorJSON{Detail: detail})
}

// fail answers an error: its reason for a bad request, "not found" for a
// missing build, otherwise a generic reason with the details logged.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad *badRequestError
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, bad.reason)
	case errIsNotFound(err):
		writeError(w, http.StatusNotFound, "Not Found")
	default:
		logFrom(r.Context()).Error().Err(err).Msg("request failed")
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

func (h *Handler) apiStatus(w http.ResponseWriter, r *http.Request) {
	bs, err := h.listBuilds(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	c, err := h.countBuilds(r.Context(), bs)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// repoJSON is a repository in the API.
type repoJSON struct {
	Name string `json:"name"`
	Link string `json:"link"`
}

func (h *Handler) apiRepos(w http.ResponseWriter, r *http.Request) {
	bs, err := h.listBuilds(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []repoJSON{}
	for _, rc := range reposOf(bs) {
		out = append(out, repoJSON{Name: rc.Name, Link: githubURL + escapePath(rc.Name)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) apiBuilds(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query(), true)
	if err != nil {
		fail(w, r, err)
		return
	}
	bs, err := h.searchBuilds(r.Context(), f)
	if err != nil {
		fail(w, r, err)
		return
	}
	out := make([]buildItemJSON, len(bs))
	for i, b := range bs {
		out[i] = h.toJSON(b).item()
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) apiBuild(w http.ResponseWriter, r *http.Request) {
	b, err := h.getBuild(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.toJSON(b))
}
