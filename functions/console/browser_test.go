package console

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"runboat.dev/shared/model"
)

// The browser test drives a real headless Chromium (Debian's package) with
// the Chrome DevTools protocol.

// chromiumEnv names the variable that may give the Chromium binary.
const chromiumEnv = "RUNBOAT_CHROMIUM"

// screenshotEnv names the variable that may give the folder of the
// screenshots; by default testdata/output.
const screenshotEnv = "RUNBOAT_SCREENSHOT_DIR"

// chromium returns the Chromium binary, or fails the test saying how to
// install it.
func chromium(t *testing.T) string {
	t.Helper()
	name := os.Getenv(chromiumEnv)
	if name == "" {
		name = "chromium"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("the browser test needs Chromium, not found as %q (%v): install Debian's package with "+
			"`apt-get update && apt-get install -y chromium`, or set %s to its path", name, err, chromiumEnv)
	}
	return p
}

// browser starts a headless Chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start the browser now, so that a failure to launch says so.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("failed to start Chromium: %v", err)
	}
	return ctx
}

// steps runs browser actions with a generous timeout.
func steps(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// get runs a browser action that reads a value.
func get[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// screenshotDir is where the screenshots go.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(screenshotEnv)
	if dir == "" {
		dir = filepath.Join("testdata", "output")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s is not a PNG (%d bytes)", name, len(png))
	}
	p := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot saved: %s", p)
}

// buildSite stands for the started builds: it answers at
// <site>/<slug> with the slug.
func buildSite(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>build</title><h1 id=\"build\">build %s</h1>", html.EscapeString(strings.Trim(r.URL.Path, "/")))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium(t) // fail at once without it
	site := buildSite(t)
	f := newFixture(t, func(o *Options) {
		o.BuildURLPattern = site.URL + "/{slug}"
		o.MailURLPattern = site.URL + "/{slug}/mail"
	})
	main := f.createBuild(t, spec{repo: "acme/app", branch: "16.0"})
	older := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", commit: sha("older")})
	pr := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", pr: 42})
	failed := f.createBuild(t, spec{
		repo: "acme/app", branch: "17.0", pr: 43, init: model.InitFailed,
		reason: "Error (exit code 1)", initLog: "installing modules\nERROR: dependency not found\n",
	})
	todo := f.createBuild(t, spec{repo: "acme/app", branch: "17.0", init: model.InitTodo})
	live := f.startedBuild(t, spec{repo: "acme/app", branch: "17.0", pr: 44})

	ctx := browser(t)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	// The repository page lists the builds.
	steps(t, ctx, "open the repository page",
		chromedp.Navigate(f.srv.URL+"/repos/acme/app"),
		chromedp.WaitVisible(css(`article[data-build="`+main.Name()+`"]`)),
	)
	names := get(t, ctx, "list the builds",
		chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("article[data-build]")).map(e => e.dataset.build)`))
	get(t, ctx, "mark the page", chromedp.Evaluate[bool](`window.notReloaded = true`))
	for _, r := range []model.Ref{main, older, pr, failed, todo, live} {
		if !slices.Contains(names, r.Name()) {
			t.Errorf("the repository page does not list build %s (%s): %v", r.Name(), r.Slug(), names)
		}
	}
	if len(names) != 6 {
		t.Errorf("the repository page lists %d builds, want 6", len(names))
	}

	// A click on Start changes the status on the page, without a reload.
	card := `article[data-build="` + main.Name() + `"]`
	steps(t, ctx, "click start",
		chromedp.Click(css(card+` button[data-action$="/start"]`)),
		chromedp.WaitVisible(css(card+`[data-status="started"]`)),
	)
	if !get(t, ctx, "check the page was not reloaded", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Error("the page was reloaded")
	}
	if text := get(t, ctx, "read the status", chromedp.Text(css(card+` .status`))); text != "started" {
		t.Errorf("status shown %q, want started", text)
	}
	if b := f.getBuild(t, main.Name()); b.Status != model.StatusStarted {
		t.Errorf("the build is %s, want started", b.Status)
	}

	// A change made elsewhere shows too, from the build events stream: in
	// seconds, while the page polls every 30 s once the stream is open.
	steps(t, ctx, "wait for the stream", chromedp.WaitVisible(css(`main[data-streaming="open"]`)))
	time.Sleep(3 * time.Second) // the poll set before the stream opened is done
	f.do(t, http.MethodPost, "/api/v1/builds/"+live.Name()+"/stop", "").want(t, http.StatusOK, "stop")
	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := chromedp.Do(sctx,
		chromedp.WaitVisible(css(`article[data-build="`+live.Name()+`"][data-status="stopped"]`)),
		chromedp.WaitVisible(css(card+` a.live`)),
	)
	cancel()
	if err != nil {
		t.Fatalf("a change made elsewhere did not show within 10 s, so not from the stream: %v", err)
	}
	t.Logf("a change made elsewhere showed %s after it was made", time.Since(began))
	saveScreenshot(t, "repo-page.png", get(t, ctx, "screenshot", chromedp.FullScreenshot(100)))

	// On a phone, nothing is wider than the screen.
	steps(t, ctx, "phone",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(f.srv.URL+"/repos/acme/app"),
		chromedp.WaitVisible(css(card)),
	)
	if get(t, ctx, "measure", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)) {
		t.Error("on a phone, the repository page is wider than the screen")
	}
	saveScreenshot(t, "repo-page-phone.png", get(t, ctx, "phone screenshot", chromedp.FullScreenshot(100)))
	steps(t, ctx, "desktop", chromedp.EmulateViewport(1280, 900))

	// The home page lists the repositories and the counts.
	steps(t, ctx, "open the home page",
		chromedp.Navigate(f.srv.URL+"/"),
		chromedp.WaitVisible(css(`a[href="/repos/acme/app"]`)),
	)
	if text := get(t, ctx, "read the counts", chromedp.Text(css(".counts"))); !strings.Contains(text, "6/10") {
		t.Errorf("the home page counts say %q, want 6 of 10 deployed", text)
	}
	saveScreenshot(t, "home-page.png", get(t, ctx, "home screenshot", chromedp.FullScreenshot(100)))

	// A badge link for one branch shows only that branch.
	steps(t, ctx, "open a badge link",
		chromedp.Navigate(f.srv.URL+"/builds?repo=acme/app&target_branch=17.0&branch=17.0"),
		chromedp.WaitVisible(css(`article[data-build="`+todo.Name()+`"]`)),
	)
	if loc := get(t, ctx, "read the location", chromedp.Location()); loc != f.srv.URL+"/repos/acme/app?branch=17.0&target_branch=17.0" {
		t.Errorf("the badge link ends on %s", loc)
	}
	names = get(t, ctx, "list the builds of the badge",
		chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("article[data-build]")).map(e => e.dataset.build)`))
	if !slices.Equal(names, []string{todo.Name()}) {
		t.Errorf("the badge link of branch 17.0 lists %v, want only %s", names, todo.Name())
	}

	// ?live on a stopped build: the page starts it with a POST and ends on
	// the build.
	if b := f.getBuild(t, pr.Name()); b.Status != model.StatusStopped {
		t.Fatalf("the build of the live link is %s, want stopped", b.Status)
	}
	steps(t, ctx, "open the live link", chromedp.Navigate(f.srv.URL+"/builds/"+pr.Name()+"?live"))
	if title := get(t, ctx, "read the title", chromedp.Title()); !strings.HasPrefix(title, "Starting ") {
		t.Errorf("the live link shows %q, want the starting page", title)
	}
	want := site.URL + "/" + pr.Slug()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		// The page navigates on its own: a read may fail in between.
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		loc, err := chromedp.Run(lctx, chromedp.Location())
		cancel()
		if err == nil && loc == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live link did not end on %s: last at %q (%v)", want, loc, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if text := get(t, ctx, "read the build", chromedp.Text(chromedp.ID("build"))); text != "build "+pr.Slug() {
		t.Errorf("the build site shows %q", text)
	}
	if b := f.getBuild(t, pr.Name()); b.Status != model.StatusStarted {
		t.Errorf("the build reached by the live link is %s, want started", b.Status)
	}
	if calls := f.ops.Calls(); !slices.Contains(calls, "start "+pr.Name()) {
		t.Errorf("operations %v, want the start of %s by the page", calls, pr.Name())
	}

	// ?live on a failed build shows its reason and its init log.
	steps(t, ctx, "open the live link of a failed build", chromedp.Navigate(f.srv.URL+"/builds/"+failed.Name()+"?live"))
	text := get(t, ctx, "read the page", chromedp.Text(css("main")))
	if !strings.Contains(text, "Error (exit code 1)") || !strings.Contains(text, "Init log") {
		t.Errorf("the failed build's page says %q", text)
	}
	steps(t, ctx, "open its init log",
		chromedp.Click(css(`main a[href$="/init-log"]`)),
		chromedp.WaitVisible(css("pre")),
	)
	if text := get(t, ctx, "read the init log", chromedp.Text(css("pre"))); !strings.Contains(text, "ERROR: dependency not found") {
		t.Errorf("the init log shows %q", text)
	}
	if bg := get(t, ctx, "read the log's style", chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`)); bg != "rgb(30, 30, 30)" {
		t.Errorf("the init log page has background %q: its style is not applied (Content-Security-Policy?)", bg)
	}

	// Its Reset button initializes it again, and the page follows.
	steps(t, ctx, "reset the failed build",
		chromedp.Navigate(f.srv.URL+"/builds/"+failed.Name()+"?live"),
		chromedp.WaitVisible(css(`button[data-action$="/reset"]`)),
	)
	get(t, ctx, "accept the confirmation", chromedp.Evaluate[bool](`window.confirm = () => true, true`))
	steps(t, ctx, "click reset",
		chromedp.Click(css(`button[data-action$="/reset"]`)),
		chromedp.WaitVisible(css(`[data-live]`)),
	)
	if b := f.getBuild(t, failed.Name()); b.Status != model.StatusInitializing {
		t.Errorf("the reset build is %s, want initializing", b.Status)
	}
	if calls := f.ops.Calls(); !slices.Contains(calls, "reset "+failed.Name()) {
		t.Errorf("operations %v, want the reset of %s", calls, failed.Name())
	}
}
