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

	"runboat.dev/shared/build"
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
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("failed to start Chromium: %v", err)
	}
	return ctx
}

// run runs browser actions with a generous timeout.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
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
	site := buildSite(t)
	f := newFixture(t, func(o *Options) {
		o.BuildURLPattern = site.URL + "/{slug}"
		o.MailURLPattern = site.URL + "/{slug}/mail"
	})
	main := f.createBuild(t, spec{repo: "acme/app", branch: "16.0"})
	older := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", commit: sha("older")})
	pr := f.createBuild(t, spec{repo: "acme/app", branch: "16.0", pr: 42})
	failed := f.createBuild(t, spec{
		repo: "acme/app", branch: "17.0", pr: 43, init: build.InitFailed,
		reason: "Error (exit code 1)", initLog: "installing modules\nERROR: dependency not found\n",
	})
	todo := f.createBuild(t, spec{repo: "acme/app", branch: "17.0", init: build.InitTodo})
	live := f.startedBuild(t, spec{repo: "acme/app", branch: "17.0", pr: 44})

	ctx := browser(t)

	// The repository page lists the builds.
	var names []string
	run(t, ctx, "open the repository page",
		chromedp.Navigate(f.srv.URL+"/repos/acme/app"),
		chromedp.WaitVisible(`article[data-build="`+main.Name()+`"]`, chromedp.ByQuery),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("article[data-build]")).map(e => e.dataset.build)`, &names),
		chromedp.Evaluate(`window.notReloaded = true`, nil),
	)
	for _, r := range []build.Ref{main, older, pr, failed, todo, live} {
		if !slices.Contains(names, r.Name()) {
			t.Errorf("the repository page does not list build %s (%s): %v", r.Name(), r.Slug(), names)
		}
	}
	if len(names) != 6 {
		t.Errorf("the repository page lists %d builds, want 6", len(names))
	}

	// A click on Start changes the status on the page, without a reload.
	card := `article[data-build="` + main.Name() + `"]`
	run(t, ctx, "click start",
		chromedp.Click(card+` button[data-action$="/start"]`, chromedp.ByQuery),
		chromedp.WaitVisible(card+`[data-status="started"]`, chromedp.ByQuery),
	)
	var notReloaded bool
	var text string
	run(t, ctx, "read the card",
		chromedp.Evaluate(`window.notReloaded === true`, &notReloaded),
		chromedp.Text(card+` .status`, &text, chromedp.ByQuery),
	)
	if !notReloaded {
		t.Error("the page was reloaded")
	}
	if text != "started" {
		t.Errorf("status shown %q, want started", text)
	}
	if b := f.getBuild(t, main.Name()); b.Status != build.StatusStarted {
		t.Errorf("the build is %s, want started", b.Status)
	}

	// A change made elsewhere shows too.
	f.do(t, http.MethodPost, "/api/v1/builds/"+live.Name()+"/stop", "").want(t, http.StatusOK, "stop")
	run(t, ctx, "see a change made elsewhere",
		chromedp.WaitVisible(`article[data-build="`+live.Name()+`"][data-status="stopped"]`, chromedp.ByQuery),
	)
	run(t, ctx, "wait for the started build's links",
		chromedp.WaitVisible(card+` a.live`, chromedp.ByQuery),
	)
	var shot []byte
	run(t, ctx, "screenshot", chromedp.FullScreenshot(&shot, 100))
	saveScreenshot(t, "repo-page.png", shot)

	// On a phone, nothing is wider than the screen.
	var overflow bool
	run(t, ctx, "phone",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(f.srv.URL+"/repos/acme/app"),
		chromedp.WaitVisible(card, chromedp.ByQuery),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &overflow),
		chromedp.FullScreenshot(&shot, 100),
	)
	if overflow {
		t.Error("on a phone, the repository page is wider than the screen")
	}
	saveScreenshot(t, "repo-page-phone.png", shot)
	run(t, ctx, "desktop", chromedp.EmulateViewport(1280, 900))

	// ?live on a stopped build starts it and ends on the build.
	var title string
	run(t, ctx, "open the live link",
		chromedp.Navigate(f.srv.URL+"/builds/"+pr.Name()+"?live"),
		chromedp.Title(&title),
	)
	if !strings.HasPrefix(title, "Starting ") {
		t.Errorf("the live link shows %q, want the starting page", title)
	}
	want := site.URL + "/" + pr.Slug()
	deadline := time.Now().Add(2 * time.Minute)
	var loc string
	for {
		// The page navigates on its own: an evaluation may fail in between.
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := chromedp.Run(lctx, chromedp.Location(&loc))
		cancel()
		if err == nil && loc == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live link did not end on %s: last at %q (%v)", want, loc, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	run(t, ctx, "read the build", chromedp.Text("#build", &text, chromedp.ByID))
	if text != "build "+pr.Slug() {
		t.Errorf("the build site shows %q", text)
	}
	if b := f.getBuild(t, pr.Name()); b.Status != build.StatusStarted {
		t.Errorf("the build reached by the live link is %s, want started", b.Status)
	}

	// ?live on a failed build shows its reason and its init log.
	run(t, ctx, "open the live link of a failed build",
		chromedp.Navigate(f.srv.URL+"/builds/"+failed.Name()+"?live"),
		chromedp.Text("main", &text, chromedp.ByQuery),
	)
	if !strings.Contains(text, "Error (exit code 1)") || !strings.Contains(text, "Init log") {
		t.Errorf("the failed build's page says %q", text)
	}
	run(t, ctx, "open its init log",
		chromedp.Click(`a[href$="/init-log"]`, chromedp.ByQuery),
		chromedp.WaitVisible("body", chromedp.ByQuery),
		chromedp.Text("body", &text, chromedp.ByQuery),
	)
	if !strings.Contains(text, "ERROR: dependency not found") {
		t.Errorf("the init log shows %q", text)
	}
}
