package console

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"runboat.dev/shared/model"
)

//go:embed templates/*.html static/*
var content embed.FS

// assets are the static files, with their versioned addresses.
type assets struct {
	files map[string][]byte
	urls  map[string]string
}

func loadAssets() (assets, error) {
	a := assets{files: map[string][]byte{}, urls: map[string]string{}}
	entries, err := fs.ReadDir(content, "static")
	if err != nil {
		return a, fmt.Errorf("failed to read the static files: %w", err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(content, "static/"+e.Name())
		if err != nil {
			return a, fmt.Errorf("failed to read static file %s: %w", e.Name(), err)
		}
		a.files[e.Name()] = b
		a.urls[e.Name()] = versioned(e.Name(), b)
	}
	return a, nil
}

// pages are the page templates.
type pages struct {
	home, repo, build, live, message, docs *template.Template
}

func newPages() (*pages, error) {
	var p pages
	for _, t := range []struct {
		name string
		dst  **template.Template
	}{{"home", &p.home}, {"repo", &p.repo}, {"build", &p.build}, {"live", &p.live}, {"message", &p.message}, {"docs", &p.docs}} {
		tpl, err := template.New(t.name).ParseFS(content, "templates/layout.html", "templates/"+t.name+".html")
		if err != nil {
			return nil, fmt.Errorf("failed to parse the %s page: %w", t.name, err)
		}
		*t.dst = tpl
	}
	return &p, nil
}

// buildView is a build as a page shows it.
type buildView struct {
	buildInfo
	Links                         links
	ShortSHA                      string
	CreatedISO, CreatedText       string
	LastScaledText, LastResetText string
	InitText                      string
	Started, Failed, Initializing bool
	CanStart, CanStop, CanReset   bool
}

// timeText formats a time for pages.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func (h *Handler) viewOf(b buildInfo) buildView {
	v := buildView{
		buildInfo:      b,
		Links:          h.linksOf(b.Build),
		ShortSHA:       b.Ref.Commit[:min(8, len(b.Ref.Commit))],
		CreatedISO:     b.Created.UTC().Format(time.RFC3339),
		CreatedText:    timeText(b.Created),
		LastScaledText: timeText(b.LastScaled),
		LastResetText:  timeText(b.LastReset),
		Started:        b.Status == model.StatusStarted,
		Failed:         b.Status == model.StatusFailed,
		Initializing:   b.Status == model.StatusInitializing,
		CanStart:       canStart(b.Status),
		CanStop:        canStop(b.Status),
		CanReset:       b.Status != model.StatusUndeploying && b.Status != model.StatusInitializing,
	}
	switch b.InitStatus {
	case model.InitTodo:
		v.InitText = "Waiting for initialization."
	case model.InitStarted:
		v.InitText = "Initializing."
	default:
		v.InitText = "Initialization status unknown."
	}
	return v
}

// groupView is the builds of a branch or of a pull request.
type groupView struct {
	Key                string
	Branch, BranchLink string
	PR                 int
	PRLink             string
	Builds             []buildView
}

// groupsOf groups sorted builds by target: consecutive builds of the same
// pull request, or branch builds of the same branch.
func (h *Handler) groupsOf(bs []buildInfo) []groupView {
	var out []groupView
	for _, b := range bs {
		v := h.viewOf(b)
		key := "branch-" + b.Ref.TargetBranch
		if b.Ref.PR != 0 {
			key = "pr-" + strconv.Itoa(b.Ref.PR) + "-" + b.Ref.TargetBranch
		}
		if n := len(out); n > 0 && out[n-1].Key == key {
			out[n-1].Builds = append(out[n-1].Builds, v)
			continue
		}
		out = append(out, groupView{
			Key: key, Branch: b.Ref.TargetBranch, BranchLink: v.Links.TargetBranch,
			PR: b.Ref.PR, PRLink: v.Links.PR, Builds: []buildView{v},
		})
	}
	return out
}

// pageData is what the templates get.
type pageData struct {
	Title   string
	CSS, JS string
	Poll    string
	Events  string // the build events stream the page follows
	PollMS  int64
	Refresh int

	Counts   counts
	Repos    []repoCount
	Repo     string
	RepoLink string
	Filter   string // the filter of the repository page, in words
	Groups   []groupView
	Build    *buildView

	Heading, Text string
	Ops           []opView // the API, on /docs
}

func (h *Handler) data(title string) pageData {
	return pageData{
		Title:  title,
		CSS:    h.assets.urls["console.css"],
		JS:     h.assets.urls["console.js"],
		PollMS: h.opts.PollInterval.Milliseconds(),
	}
}

// contentSecurityPolicy allows the page's own files only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// render writes a page, or only its body when the query asks for
// part=body (the polling of the page's script).
func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, t *template.Template, d pageData) {
	name := "layout"
	if r.URL.Query().Get("part") == "body" {
		name = "body"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, d); err != nil {
		logFrom(r.Context()).Error().Err(err).Str("template", t.Name()).Msg("failed to render page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w) // the client is gone if this fails
}

// message renders a message page.
func (h *Handler) message(w http.ResponseWriter, r *http.Request, code int, heading, text string, b *buildView) {
	d := h.data(heading)
	d.Heading, d.Text, d.Build = heading, text, b
	if b != nil {
		d.Repo = b.Ref.Repo
	}
	h.render(w, r, code, h.pages.message, d)
}

// pageFailed answers a page request that failed on the server.
func (h *Handler) pageFailed(w http.ResponseWriter, r *http.Request, err error) {
	logFrom(r.Context()).Error().Err(err).Msg("page failed")
	h.message(w, r, http.StatusInternalServerError, "Something went wrong", "The builds could not be read. Try again in a moment.", nil)
}

func (h *Handler) pageHome(w http.ResponseWriter, r *http.Request) {
	deps, err := h.listDeployments(r.Context())
	if err != nil {
		h.pageFailed(w, r, err)
		return
	}
	bs := make([]buildInfo, 0, len(deps))
	for i := range deps {
		if b, err := buildOf(&deps[i]); err == nil {
			bs = append(bs, b)
		}
	}
	c, err := h.countBuilds(r.Context(), bs)
	if err != nil {
		h.pageFailed(w, r, err)
		return
	}
	d := h.data("Builds")
	d.Poll = "/?part=body"
	d.Events = "/api/v1/build-events"
	d.Counts = c
	d.Repos = reposOf(bs)
	h.render(w, r, http.StatusOK, h.pages.home, d)
}

func (h *Handler) pageRepo(w http.ResponseWriter, r *http.Request) {
	repo := strings.ToLower(r.PathValue("owner") + "/" + r.PathValue("repo"))
	if err := model.ValidateRepo(repo); err != nil {
		h.message(w, r, http.StatusBadRequest, "No such repository", "A repository is named owner/name.", nil)
		return
	}
	q := r.URL.Query()
	q.Del("repo") // the path says it
	f, err := parseFilter(q, false)
	var bad *badRequestError
	if errors.As(err, &bad) {
		h.message(w, r, http.StatusBadRequest, "Bad filter", bad.reason, nil)
		return
	}
	f.repo = repo
	bs, err := h.searchBuilds(r.Context(), f)
	if err != nil {
		h.pageFailed(w, r, err)
		return
	}
	d := h.data(repo)
	d.Repo, d.RepoLink = repo, githubURL+escapePath(repo)
	d.Poll = "/repos/" + escapePath(repo) + "?part=body"
	d.Events = "/api/v1/build-events?" + url.Values{"repo": {repo}}.Encode()
	if fq := f.query().Encode(); fq != "" {
		d.Events += "&" + fq
		d.Poll = "/repos/" + escapePath(repo) + "?" + fq + "&part=body"
		d.Filter = f.text()
	}
	d.Groups = h.groupsOf(bs)
	h.render(w, r, http.StatusOK, h.pages.repo, d)
}

// pageBuild is the page of a build, or with ?live the wake-on-click.
func (h *Handler) pageBuild(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("name")
	_, live := r.URL.Query()["live"]
	b, err := h.getBuild(ctx, name)
	switch {
	case errIsNotFound(err):
		h.message(w, r, http.StatusNotFound, "No such build",
			"There is no build named "+name+". It may have been undeployed: builds that are not used for a while are, and a newer commit replaces the build of an older one.", nil)
		return
	case err != nil:
		h.pageFailed(w, r, err)
		return
	}
	if live {
		h.wake(w, r, b)
		return
	}
	v := h.viewOf(b)
	d := h.data(b.Ref.Slug())
	d.Repo, d.Build = b.Ref.Repo, &v
	d.Poll = "/builds/" + url.PathEscape(name) + "?part=body"
	d.Events = "/api/v1/build-events?" + url.Values{"build_name": {name}}.Encode()
	h.render(w, r, http.StatusOK, h.pages.build, d)
}

// wake sends to a started build, and shows a page that follows the progress
// of a stopped, starting or initializing one until it is started. A GET
// changes nothing (link unfurlers, mail scanners and prefetchers must wake
// no build): the page of a stopped build starts it with a POST, from its
// script at once or from its button (wakePost).
func (h *Handler) wake(w http.ResponseWriter, r *http.Request, b buildInfo) {
	switch b.Status {
	case model.StatusStarted:
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, h.linksOf(b.Build).Deploy, http.StatusFound)
		return
	case model.StatusUndeploying:
		v := h.viewOf(b)
		h.message(w, r, http.StatusGone, "Build undeployed", "This build is being undeployed: it cannot be started any more.", &v)
		return
	case model.StatusFailed:
		v := h.viewOf(b)
		h.message(w, r, http.StatusOK, "Build failed", "The initialization of this build failed, so it cannot be started.", &v)
		return
	}
	v := h.viewOf(b)
	d := h.data("Starting " + b.Ref.Slug())
	d.Repo, d.Build = b.Ref.Repo, &v
	if !v.CanStart {
		d.Refresh = 3 // without script: reload, which redirects once started
	}
	h.render(w, r, http.StatusOK, h.pages.live, d)
}

// wakePost answers the POST of the wake-on-click page (its button, without
// a script): it starts a stopped build, then sends back to the page (303),
// which follows it.
func (h *Handler) wakePost(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("name")
	if _, live := r.URL.Query()["live"]; !live {
		h.message(w, r, http.StatusBadRequest, "Nothing to do", "Only the wake-on-click page (?live) takes a POST.", nil)
		return
	}
	err := h.scale(ctx, name, starting)
	switch {
	case errIsNotFound(err):
		h.message(w, r, http.StatusNotFound, "No such build", "There is no build named "+name+".", nil)
		return
	case err != nil:
		h.pageFailed(w, r, err)
		return
	}
	http.Redirect(w, r, h.linksOf(model.Build{Name: name}).Live, http.StatusSeeOther)
}

// static serves the embedded files.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, ok := h.assets.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	if r.URL.Query().Get("v") != "" {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=300")
	}
	_, _ = w.Write(b) // the client is gone if this fails
}

// repoPage is the address of the repository page of a filter, or of the
// home page without a repository.
func repoPage(f filter) string {
	if f.repo == "" {
		return "/"
	}
	target := "/repos/" + escapePath(f.repo)
	if q := f.query().Encode(); q != "" {
		target += "?" + q
	}
	return target
}

// badges answers the links of the Python runboat's "Try me" badges,
// /builds?repo&target_branch&branch&pr: 307 to the repository page with
// the same filters, as the Python runboat to its web UI; 400 on a bad one.
func (h *Handler) badges(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query(), false)
	if err != nil {
		fail(w, r, err)
		return
	}
	http.Redirect(w, r, repoPage(f), http.StatusTemporaryRedirect)
}

// legacyBuilds sends the Python runboat's builds page address to the
// repository page, with its filters; an invalid filter is dropped.
func (h *Handler) legacyBuilds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f filter
	if repo := strings.ToLower(q.Get("repo")); model.ValidateRepo(repo) == nil {
		f.repo = repo
		// Each parameter on its own, so that a bad one drops only itself.
		for _, k := range []string{"target_branch", "branch", "pr"} {
			one, err := parseFilter(url.Values{k: {q.Get(k)}}, false)
			if err != nil {
				continue
			}
			f.targetBranch = cmp.Or(f.targetBranch, one.targetBranch)
			f.branch = cmp.Or(f.branch, one.branch)
			f.pr = cmp.Or(f.pr, one.pr)
		}
	}
	http.Redirect(w, r, repoPage(f), http.StatusMovedPermanently)
}

// legacyBuild sends the Python runboat's build page address to the build
// page.
func (h *Handler) legacyBuild(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		http.Redirect(w, r, "/", http.StatusMovedPermanently)
		return
	}
	http.Redirect(w, r, "/builds/"+url.PathEscape(name), http.StatusMovedPermanently)
}
