package console

import (
	"html"
	"strconv"
	"strings"
)

// The pages are written by Go functions rather than html/template: the
// template engine looks methods up by name at run time, which makes the
// linker keep every exported method of every type in the binary (the
// Kubernetes API types of every group among them), a fifth of the
// function's size. Every value goes through text, attr or url, which escape
// it as html/template would for that place.

// page is an HTML document being written.
type page struct{ strings.Builder }

// raw writes markup.
func (p *page) raw(s ...string) {
	for _, x := range s {
		p.WriteString(x)
	}
}

// text writes s as text or as a quoted attribute value: <, >, &, ' and "
// escaped.
func (p *page) text(s string) { p.WriteString(html.EscapeString(s)) }

// attr is text, for a quoted attribute value.
func (p *page) attr(s string) { p.text(s) }

// num writes an integer.
func (p *page) num(n int64) { p.WriteString(strconv.FormatInt(n, 10)) }

// url writes s as a URL attribute value: a URL with a scheme other than
// http, https or mailto is replaced by "#ZgotmplZ", as html/template does,
// so that no javascript: link can be made of a value.
func (p *page) url(s string) {
	if i := strings.IndexAny(s, ":/?#"); i >= 0 && s[i] == ':' {
		switch strings.ToLower(s[:i]) {
		case "http", "https", "mailto":
		default:
			s = "#ZgotmplZ"
		}
	}
	p.text(s)
}

// attrText writes ` name="value"`, value escaped.
func (p *page) attrText(name, value string) {
	p.raw(" ", name, "=\"")
	p.attr(value)
	p.raw("\"")
}

// attrURL writes ` name="value"`, value a URL.
func (p *page) attrURL(name, value string) {
	p.raw(" ", name, "=\"")
	p.url(value)
	p.raw("\"")
}

// attrNum writes ` name="n"`.
func (p *page) attrNum(name string, n int64) {
	p.raw(" ", name, "=\"")
	p.num(n)
	p.raw("\"")
}

// wrap writes open, text escaped, then close.
func (p *page) wrap(open, text, close string) {
	p.raw(open)
	p.text(text)
	p.raw(close)
}

// pageFunc writes the body of a page.
type pageFunc func(p *page, d *pageData)

// pages are the pages of the console.
type pages struct {
	home, repo, build, live, message, docs pageFunc
}

func newPages() (*pages, error) {
	return &pages{home: homeBody, repo: repoBody, build: buildBody, live: liveBody, message: messageBody, docs: docsBody}, nil
}

// layout writes the whole document around the body.
func layout(p *page, d *pageData, body pageFunc) {
	p.raw("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	p.wrap("<title>", d.Title, " · runboat</title>\n<link rel=\"stylesheet\"")
	p.attrURL("href", d.CSS)
	p.raw(">\n<script")
	p.attrURL("src", d.JS)
	p.raw(" defer></script>")
	if d.Refresh != 0 {
		p.raw("\n<noscript><meta http-equiv=\"refresh\"")
		p.attrNum("content", int64(d.Refresh))
		p.raw("></noscript>")
	}
	p.raw("\n</head>\n<body>\n<header class=\"top\">\n  <a class=\"brand\" href=\"/\">runboat</a>")
	if d.Repo != "" {
		p.raw("<span class=\"crumb\">/</span>")
		p.link("crumb", "/repos/"+d.Repo, d.Repo)
	}
	p.raw("\n</header>\n<main id=\"main\"")
	if d.Poll != "" {
		p.attrText("data-poll", d.Poll)
		p.attrNum("data-poll-ms", d.PollMS)
	}
	if d.Events != "" {
		p.attrText("data-events", d.Events)
	}
	p.raw(">\n")
	body(p, d)
	p.raw("\n</main>\n<p id=\"notice\" class=\"notice\" role=\"status\" aria-live=\"polite\" hidden></p>\n</body>\n</html>\n")
}

// link writes <a href="href">text</a>, with class when not empty.
func (p *page) link(class, href, text string) {
	p.raw("<a")
	if class != "" {
		p.attrText("class", class)
	}
	p.attrURL("href", href)
	p.wrap(">", text, "</a>")
}

func homeBody(p *page, d *pageData) {
	c := d.Counts
	p.raw("<h1>Builds</h1>\n<section class=\"counts\" aria-label=\"Status\">")
	for _, n := range []struct {
		n, max int
		what   string
	}{
		{c.Deployed, c.MaxDeployed, "deployed"},
		{c.Started, c.MaxStarted, "started"},
		{c.Initializing, c.MaxInitializing, "initializing"},
		{c.ToInitialize, -1, "to initialize"},
		{c.Stopped, -1, "stopped"},
		{c.Failed, -1, "failed"},
		{c.Undeploying, -1, "undeploying"},
	} {
		p.raw("\n  <div class=\"count\"><span class=\"n\">")
		p.num(int64(n.n))
		if n.max >= 0 {
			p.raw("<small>/")
			p.num(int64(n.max))
			p.raw("</small>")
		}
		p.raw("</span>", n.what, "</div>")
	}
	p.raw("\n</section>\n<h2>Repositories</h2>")
	if len(d.Repos) == 0 {
		p.raw("\n<p class=\"empty\">No builds yet.</p>")
		return
	}
	p.raw("\n<ul class=\"repos\">")
	for _, r := range d.Repos {
		p.raw("\n  <li>")
		p.link("", "/repos/"+r.Name, r.Name)
		p.raw(" <span class=\"meta\">")
		p.num(int64(r.Builds))
		p.raw(" build")
		if r.Builds != 1 {
			p.raw("s")
		}
		if r.Started != 0 {
			p.raw(", ")
			p.num(int64(r.Started))
			p.raw(" started")
		}
		if r.Failed != 0 {
			p.raw(", ")
			p.num(int64(r.Failed))
			p.raw(" failed")
		}
		p.raw("</span></li>")
	}
	p.raw("\n</ul>")
}

func repoBody(p *page, d *pageData) {
	p.raw("<h1>")
	p.link("", d.RepoLink, d.Repo)
	p.raw("</h1>")
	if d.Filter != "" {
		p.wrap("\n<p class=\"filter\">Only the ", d.Filter, ". ")
		p.link("", "/repos/"+d.Repo, "Show all builds")
		p.raw("</p>")
	}
	for _, g := range d.Groups {
		p.raw("\n<section class=\"group\"")
		p.attrText("data-group", g.Key)
		p.raw(">\n  <h2>")
		if g.PR != 0 {
			p.link("", g.PRLink, "PR #"+strconv.Itoa(g.PR))
			p.raw(" <span class=\"to\">→ ")
			p.link("", g.BranchLink, g.Branch)
			p.raw("</span>")
		} else {
			p.raw("<span class=\"kind\">Branch</span> ")
			p.link("", g.BranchLink, g.Branch)
		}
		p.raw("\n  </h2>\n  <div class=\"cards\">")
		for i := range g.Builds {
			card(p, &g.Builds[i])
		}
		p.raw("\n  </div>\n</section>")
	}
	if len(d.Groups) == 0 {
		p.raw("\n<p class=\"empty\">")
		if d.Filter != "" {
			p.raw("No builds match this filter.")
		} else {
			p.raw("No builds of this repository.")
		}
		p.raw("</p>")
	}
}

// status writes the badge of a status.
func status(p *page, s string) {
	p.raw("<span")
	p.attrText("class", "status status-"+s)
	p.wrap(">", s, "</span>")
}

// articleHead writes the opening tag of a build's card.
func articleHead(p *page, class string, b *buildView) {
	p.raw("<article")
	p.attrText("class", class)
	p.attrText("data-build", b.Name)
	p.attrText("data-status", string(b.Status))
	p.raw(">\n  <div class=\"card-head\">")
}

// created writes when a build was created, in a <time>.
func created(p *page, b *buildView) {
	p.raw("<time")
	p.attrText("datetime", b.CreatedISO)
	p.wrap(">", b.CreatedText, "</time>")
}

// reason writes why a build failed.
func reason(p *page, b *buildView) {
	if b.Reason != "" {
		p.text(b.Reason)
	} else {
		p.raw("Initialization failed.")
	}
}

// startedLinks writes the links of a started build.
func startedLinks(p *page, b *buildView) {
	p.link("live", b.Links.Deploy, "Open build")
	p.raw(" ")
	p.link("", b.Links.Mail, "Mail")
	p.raw(" ")
	p.link("", b.Links.Log, "Log")
}

func card(p *page, b *buildView) {
	p.raw("\n")
	articleHead(p, "card", b)
	p.raw("\n    ")
	status(p, string(b.Status))
	p.raw("\n    <a class=\"sha\"")
	p.attrURL("href", b.Links.Commit)
	p.attrText("title", b.Ref.Commit)
	p.wrap(">", b.ShortSHA, "</a>\n  </div>\n  <p class=\"meta\">")
	created(p, b)
	p.raw(" · ")
	p.link("", b.Links.Page, "details")
	p.raw("</p>")
	if b.Started {
		p.raw("\n  <p class=\"links\">")
		startedLinks(p, b)
		p.raw("</p>")
	}
	switch {
	case b.Failed:
		p.raw("\n  <p class=\"reason\">")
		reason(p, b)
		p.raw(" ")
		p.link("", b.Links.InitLog, "Init log")
		p.raw("</p>")
	case b.Initializing:
		p.wrap("\n  <p class=\"meta\">", b.InitText, " ")
		p.link("", b.Links.InitLog, "Init log")
		p.raw("</p>")
	}
	actions(p, b, b.CanReset && b.Failed)
	p.raw("\n</article>")
}

// actions writes the buttons of a build; reset says whether Reset is one.
func actions(p *page, b *buildView, reset bool) {
	p.raw("\n<div class=\"actions\">")
	button := func(class, action, confirm, label string) {
		p.raw("<button type=\"button\"")
		if class != "" {
			p.attrText("class", class)
		}
		p.attrURL("data-action", b.Links.APIURL+"/"+action)
		if confirm != "" {
			p.attrText("data-confirm", confirm)
		}
		p.raw(">", label, "</button>")
	}
	if b.CanStart {
		button("", "start", "", "Start")
	}
	if b.CanStop {
		button("", "stop", "", "Stop")
	}
	if reset {
		button("secondary", "reset", "Reset this build? It will be initialized again.", "Reset")
	}
	p.raw("</div>")
}

func buildBody(p *page, d *pageData) {
	b := d.Build
	if b == nil {
		return
	}
	p.wrap("<h1 class=\"slug\">", b.Ref.Slug(), "</h1>\n")
	articleHead(p, "card wide", b)
	status(p, string(b.Status))
	p.raw("</div>\n  <dl>\n    <dt>Repository</dt><dd>")
	p.link("", "/repos/"+b.Ref.Repo, b.Ref.Repo)
	p.raw("</dd>\n    <dt>Branch</dt><dd>")
	p.link("", b.Links.TargetBranch, b.Ref.TargetBranch)
	p.raw("</dd>")
	if b.Ref.PR != 0 {
		p.raw("<dt>Pull request</dt><dd>")
		p.link("", b.Links.PR, "#"+strconv.Itoa(b.Ref.PR))
		p.raw("</dd>")
	}
	p.raw("\n    <dt>Commit</dt><dd>")
	p.link("sha", b.Links.Commit, b.Ref.Commit)
	p.raw("</dd>\n    <dt>Created</dt><dd>")
	created(p, b)
	p.wrap("</dd>\n    <dt>Last scaled</dt><dd>", b.LastScaledText, "</dd>")
	if b.LastResetText != "" {
		p.wrap("<dt>Last reset</dt><dd>", b.LastResetText, "</dd>")
	}
	p.wrap("\n    <dt>Name</dt><dd class=\"sha\">", b.Name, "</dd>\n  </dl>")
	switch {
	case b.Failed:
		p.raw("\n  <p class=\"reason\">")
		reason(p, b)
		p.raw("</p>")
	case b.Initializing:
		p.wrap("\n  <p class=\"meta\">", b.InitText, "</p>")
	}
	p.raw("\n  <p class=\"links\">")
	if b.Started {
		startedLinks(p, b)
	}
	p.raw("\n    ")
	p.link("", b.Links.InitLog, "Init log")
	if !b.Started {
		p.raw(" ")
		p.link("", b.Links.Live, "Start and open")
	}
	p.raw("\n  </p>")
	actions(p, b, b.CanReset)
	p.raw("\n</article>")
}

func liveBody(p *page, d *pageData) {
	b := d.Build
	if b == nil {
		return
	}
	p.raw("<section class=\"live-page\"")
	p.attrText("data-live", b.Links.APIURL)
	p.attrNum("data-poll-ms", d.PollMS)
	if b.CanStart {
		p.raw(" data-autostart")
	}
	p.wrap(">\n  <div class=\"spinner\" aria-hidden=\"true\"></div>\n  <h1>Starting <span class=\"slug\">", b.Ref.Slug(), "</span></h1>\n")
	p.wrap("  <p>Status: <strong data-live-status>", string(b.Status), "</strong></p>\n  <p class=\"meta\">")
	if b.Initializing {
		p.raw("The build is being initialized; it starts afterwards.")
	} else {
		p.raw("It usually takes a few seconds.")
	}
	p.raw("\n  This page takes you to the build as soon as it is started.</p>")
	if b.CanStart {
		p.raw("\n  <form method=\"post\"")
		p.attrURL("action", b.Links.Live)
		p.raw("><button type=\"submit\">Start the build</button></form>")
	}
	p.raw("\n  <p class=\"links\">")
	p.link("", b.Links.Page, "Build details")
	p.raw(" ")
	p.link("", b.Links.InitLog, "Init log")
	p.raw("</p>\n</section>")
}

func messageBody(p *page, d *pageData) {
	p.wrap("<section class=\"message\">\n  <h1>", d.Heading, "</h1>\n")
	p.wrap("  <p>", d.Text, "</p>")
	if b := d.Build; b != nil {
		if b.Failed {
			p.raw("\n  <p class=\"reason\">")
			reason(p, b)
			p.raw("</p>\n  <p class=\"links\">")
			p.link("", b.Links.InitLog, "Init log")
			p.raw(" ")
			p.link("", b.Links.Page, "Build details")
			p.raw("</p>")
			actions(p, b, b.CanReset)
		} else {
			p.raw("\n  <p class=\"links\">")
			p.link("", b.Links.Page, "Build details")
			p.raw("</p>")
		}
	}
	p.raw("\n  <p class=\"links\">")
	if d.Repo != "" {
		p.link("", "/repos/"+d.Repo, "Builds of "+d.Repo)
		p.raw(" ")
	}
	p.link("", "/", "All repositories")
	p.raw("</p>\n</section>")
}

// docsBody is the API's documentation, made from its OpenAPI document.
func docsBody(p *page, d *pageData) {
	p.wrap("<section class=\"docs\">\n  <h1>", d.Heading, "</h1>\n")
	p.wrap("  <p>", d.Text, " The machine-readable document is <a href=\"/openapi.json\">/openapi.json</a>.</p>")
	for _, op := range d.Ops {
		p.raw("\n  <article class=\"op\"")
		p.attrText("id", op.Method+" "+op.Path)
		p.wrap(">\n    <h2><code>", op.Method+" "+op.Path, "</code>")
		if op.Admin {
			p.raw(" <span class=\"admin\">admin</span>")
		}
		p.wrap("</h2>\n    <p>", op.Summary+".", "")
		if op.Text != "" {
			p.wrap(" ", op.Text, "")
		}
		p.raw("</p>")
		if len(op.Params) > 0 {
			p.raw("\n    <table>\n      <thead><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr></thead>\n      <tbody>")
			for _, pa := range op.Params {
				p.wrap("\n        <tr><td><code>", pa.Name, "</code>")
				if pa.Required {
					p.raw(" (required)")
				}
				p.wrap("</td><td>", pa.In, "</td>")
				p.wrap("<td>", pa.Type, "</td>")
				p.wrap("<td>", pa.Text, "</td></tr>")
			}
			p.raw("\n      </tbody>\n    </table>")
		}
		p.raw("\n    <ul class=\"responses\">")
		for _, r := range op.Responses {
			p.wrap("\n      <li><code>", r.Code, "</code>")
			p.wrap(" ", r.Text, "</li>")
		}
		p.raw("\n    </ul>\n  </article>")
	}
	p.raw("\n</section>")
}
