package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"runboat.dev/functions/internal/testutil"
	"runboat.dev/functions/webhook"
	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/benchfig"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// seedBuilds is the number of builds already there: $RUNBOAT_BENCH_FUNCTION_BUILDS,
// 10,000 by default, over seedRepos repositories.
func seedBuilds(b *testing.B) int {
	s := os.Getenv("RUNBOAT_BENCH_FUNCTION_BUILDS")
	if s == "" {
		return 10000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < seedRepos {
		b.Fatalf("RUNBOAT_BENCH_FUNCTION_BUILDS: %q is not a number of builds ≥ %d", s, seedRepos)
	}
	return n
}

const (
	seedRepos = 100
	secret    = "bench-webhook-secret"
	repoRule  = "^(codertocat/hello-world|acme/.*)$"
)

// rig is a namespace of builds with the function's identity installed.
type rig struct {
	env      *e2e.Env
	function *rest.Config
	builds   config.Builds
	seed     e2e.Seed
}

func newRig(b *testing.B, n int) *rig {
	b.Helper()
	env := e2e.New(b)
	rule, err := config.NewRepoRule(repoRule, ".*", config.BuildSettings{Image: "busybox:1.36", KubefilesPath: demoKubefiles(b)})
	if err != nil {
		b.Fatal(err)
	}
	seed := e2e.Seed{N: n, Repos: seedRepos, Image: "busybox:1.36"}
	e2e.CreateBuilds(b, env, seed)
	return &rig{
		env:      env,
		function: manifests.InstallFunction(b, env),
		builds:   config.Builds{Repos: config.RepoRules{rule}, Namespace: env.Namespace, Domain: "builds.example.org"},
		seed:     seed,
	}
}

func demoKubefiles(b *testing.B) string {
	dir, err := filepath.Abs(filepath.Join("..", "..", "kubefiles", "demo"))
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// bareCreate creates a Deployment of nothing, the baseline of a build.
func (r *rig) bareCreate(ctx context.Context, name string) error {
	l := map[string]string{"app": name}
	_, err := r.env.Client.AppsV1().Deployments(r.env.Namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1.36"}}},
			},
		},
	}, metav1.CreateOptions{})
	return err
}

var commits atomic.Int64

// pushBody is GitHub's push payload for a new commit of master.
func pushBody(b *testing.B, template []byte) ([]byte, string) {
	b.Helper()
	sha := fmt.Sprintf("%040x", 0xbe0c000000+commits.Add(1))
	var m map[string]any
	if err := json.Unmarshal(template, &m); err != nil {
		b.Fatal(err)
	}
	m["after"] = sha
	body, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return body, sha
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// BenchmarkFunction measures every figure of the function on one namespace
// of 10,000 builds (make bench runs it with -benchtime 1x: each figure has
// its own number of samples).
func BenchmarkFunction(b *testing.B) {
	r := newRig(b, seedBuilds(b))
	template := testutil.Payload(b, "push.branch")
	// The reaction first: the deliveries of the latency leave builds to
	// initialize, which the passes would launch before the one timed.
	b.Run("reaction", func(b *testing.B) { benchReaction(b, r) })
	b.Run("webhook-latency", func(b *testing.B) { benchDeliveryLatency(b, r, template) })
	fn := startFunction(b, r)
	b.Run("http-throughput", func(b *testing.B) { benchThroughput(b, r, fn, template) })
	b.Run("same-commit-burst", func(b *testing.B) { benchBurst(b, fn, template) })
	b.Run("console", func(b *testing.B) { benchConsole(b, r, fn) })
	rss, err := fn.peakRSS()
	if err != nil {
		b.Fatal(err)
	}
	benchfig.Report(b, "function-rss-mb", rss, "MB", 0, "")
}

// benchDeliveryLatency: a new-build delivery through the webhook and the
// deployer as the function's identity, without the initializer pass, next
// to a bare Deployment create, one after the other so both see the same
// load.
func benchDeliveryLatency(b *testing.B, r *rig, template []byte) {
	clients, err := kube.NewClients(r.function)
	if err != nil {
		b.Fatal(err)
	}
	d := deploy.New(r.builds, clients, clock.RealClock{})
	hook, err := webhook.New(webhook.Options{
		Secret: []byte(secret), Supported: r.builds.Supported, Deployer: d,
		Statuses: github.NoopStatusPoster{}, BaseURL: "http://runboat.test",
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var bare, hook50 []time.Duration
	for i := range 100 {
		t, err := timed(func() error { return r.bareCreate(ctx, fmt.Sprintf("bare-latency-%d", i)) })
		if err != nil {
			b.Fatal(err)
		}
		bare = append(bare, t)
		body, _ := pushBody(b, template)
		req := testutil.Delivery(webhook.Path, "push", body, []byte(secret))
		t, err = timed(func() error {
			w := &recorder{header: http.Header{}}
			hook.ServeHTTP(w, req)
			if w.code != http.StatusCreated {
				return fmt.Errorf("webhook: %d %s", w.code, w.body.String())
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		hook50 = append(hook50, t)
	}
	b.ReportMetric(ms(median(bare)), "bare-p50-ms")
	b.ReportMetric(ms(median(hook50)), "webhook-p50-ms")
	benchfig.Report(b, "webhook-p50-ratio", ms(median(hook50)), "ms", float64(median(hook50))/float64(median(bare)), "bare-create")
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(p)
}
func (w *recorder) WriteHeader(code int) { w.code = code }

// benchReaction: the initializer pass the function runs after a new build,
// as the function, in this namespace and in one of 100 builds: each sample
// adds a build to initialize, times the pass (which launches its init Job)
// and then marks the build initialized, out of the timing, so that the
// passes all see the same state.
func benchReaction(b *testing.B, r *rig) {
	small := newRig(b, seedRepos)
	big := reactionSamples(b, r)
	little := reactionSamples(b, small)
	bare := append(big.bare, little.bare...)
	b.ReportMetric(ms(median(big.pass)), "pass-10k-p50-ms")
	b.ReportMetric(ms(median(little.pass)), "pass-100-p50-ms")
	benchfig.Report(b, "reaction-10k-vs-100", ms(median(big.pass)), "ms", float64(median(big.pass))/float64(median(little.pass)), "pass-at-100-builds")
	benchfig.Report(b, "reaction-vs-create", ms(median(big.pass)), "ms", float64(median(big.pass))/float64(median(bare)), "bare-create")
}

type reactionTimes struct{ pass, bare []time.Duration }

func reactionSamples(b *testing.B, r *rig) reactionTimes {
	b.Helper()
	clients, err := kube.NewClients(r.function)
	if err != nil {
		b.Fatal(err)
	}
	env, err := runner.NewEnv(runner.Config{
		Builds: r.builds,
		Quotas: config.Quotas{MaxInitializing: 2, MaxStarted: 10, MaxDeployed: 1 << 20},
		GitHub: config.GitHub{DisableCommitStatuses: true, BaseURL: "http://runboat.test"},
		Jobs:   config.Jobs{InitStartTimeout: 5 * time.Minute, CleanupAttempts: 3, CleanupBackoff: time.Minute, OrphanGracePeriod: 10 * time.Minute},
	}, clients, initializer.Name, runner.EnvOptions{Statuses: github.NoopStatusPoster{}, Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	deps := r.env.Client.AppsV1().Deployments(r.env.Namespace)
	var out reactionTimes
	for i := range 30 {
		t, err := timed(func() error { return r.bareCreate(ctx, fmt.Sprintf("bare-reaction-%d", i)) })
		if err != nil {
			b.Fatal(err)
		}
		out.bare = append(out.bare, t)
		name := newTodoBuild(b, r, 1_000_000+i)
		t, err = timed(func() error { return initializer.RunOnce(ctx, env) })
		if err != nil {
			b.Fatal(err)
		}
		out.pass = append(out.pass, t)
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if got := d.Annotations[model.AnnotationInitStatus]; got != string(model.InitStarted) {
			b.Fatalf("the pass left build %s %s, want it started", name, got)
		}
		d.Annotations[model.AnnotationInitStatus] = string(model.InitSucceeded)
		d.Labels[model.LabelInitStatus] = string(model.InitSucceeded)
		if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// newTodoBuild adds build number i of the rig's seed, to initialize, and
// returns the name of its Deployment.
func newTodoBuild(b *testing.B, r *rig, i int) string {
	b.Helper()
	s := r.seed
	s.N, s.TodoEvery = 1, 1
	e2e.CreateBuildsFrom(b, r.env, s, i)
	ref, err := s.SeedRef(i)
	if err != nil {
		b.Fatal(err)
	}
	return ref.Name() + "-web"
}

// function is the function's binary serving HTTP in its own process.
type function struct {
	url string
	cmd *exec.Cmd
}

// startFunction builds the function and starts it with --listen, as the
// function's identity, on the rig's namespace.
func startFunction(b *testing.B, r *rig) *function {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "runboat")
	build := exec.Command("go", "build", "-o", bin, "../cmd/runboat")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := manifests.WriteKubeconfig(kubeconfig, "runboat-function", "", r.function); err != nil {
		b.Fatal(err)
	}
	addr := freeAddress(b)
	repos, err := json.Marshal([]map[string]any{{"repo": repoRule, "branch": ".*",
		"builds": []map[string]any{{"image": "busybox:1.36", "kubefiles_path": demoKubefiles(b)}}}})
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--listen", addr, "--log-level", "warn")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"KUBECONFIG=" + kubeconfig,
		"RUNBOAT_REPOS=" + string(repos),
		"RUNBOAT_BUILD_NAMESPACE=" + r.env.Namespace,
		"RUNBOAT_BUILD_DOMAIN=builds.example.org",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET=" + secret,
		"RUNBOAT_DISABLE_COMMIT_STATUSES=true",
		"RUNBOAT_API_ADMIN_USER=admin",
		"RUNBOAT_API_ADMIN_PASSWD=pw",
		"RUNBOAT_MAX_INITIALIZING=2",
		"RUNBOAT_MAX_DEPLOYED=1000000",
	}
	var logs testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("function log:\n%s", logs.String())
		}
	})
	fn := &function{url: "http://" + addr, cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fn.url + "/api/v1/status")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return fn
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the function does not serve: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// peakRSS is the function's peak resident memory so far, in MB (VmHWM).
func (f *function) peakRSS() (float64, error) {
	file, err := os.Open(fmt.Sprintf("/proc/%d/status", f.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = file.Close() }()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", f.cmd.Process.Pid)
}

func (f *function) deliver(body []byte) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, f.url+webhook.Path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(github.HeaderDelivery, testutil.DeliveryID)
	req.Header.Set(github.HeaderEvent, "push")
	req.Header.Set(github.HeaderSignature, github.Signature(body, []byte(secret)))
	return timed(func() error {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("delivery: %d %s", resp.StatusCode, msg)
		}
		return nil
	})
}

func (f *function) get(path string) (time.Duration, error) {
	return timed(func() error {
		resp, err := http.Get(f.url + path)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return nil
	})
}

// parallel runs n calls of f from clients goroutines and returns the
// wall time.
func parallel(clients, n int, f func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	return timed(func() error {
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if err := f(i); err != nil {
						mu.Lock()
						first = cmpErr(first, err)
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		return first
	})
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// benchThroughput: new-build deliveries from 16 concurrent clients to the
// function in HTTP mode (each runs the initializer pass), next to bare
// creates from 16 clients without a client-side rate limit.
func benchThroughput(b *testing.B, r *rig, fn *function, template []byte) {
	const clients, n = 16, 200
	ctx := context.Background()
	bareWall, err := parallel(clients, n, func(i int) error { return r.bareCreate(ctx, fmt.Sprintf("bare-throughput-%d", i)) })
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i], _ = pushBody(b, template)
	}
	wall, err := parallel(clients, n, func(i int) error { _, err := fn.deliver(bodies[i]); return err })
	if err != nil {
		b.Fatal(err)
	}
	perS, barePerS := float64(n)/wall.Seconds(), float64(n)/bareWall.Seconds()
	b.ReportMetric(barePerS, "bare-creates/s")
	benchfig.Report(b, "webhook-builds-per-s", perS, "builds/s", perS/barePerS, "bare-creates/s")
}

// benchBurst: 20 concurrent deliveries of one new commit, each against one
// delivery of a new commit alone (the median of 5), five bursts.
func benchBurst(b *testing.B, fn *function, template []byte) {
	var alone, worst []time.Duration
	for range 5 {
		for range 5 {
			body, _ := pushBody(b, template)
			t, err := fn.deliver(body)
			if err != nil {
				b.Fatal(err)
			}
			alone = append(alone, t)
		}
		body, _ := pushBody(b, template)
		times := make([]time.Duration, 20)
		if _, err := parallel(20, 20, func(i int) (err error) { times[i], err = fn.deliver(body); return err }); err != nil {
			b.Fatal(err)
		}
		worst = append(worst, slices.Max(times))
	}
	benchfig.Report(b, "same-commit-burst-ratio", ms(median(worst)), "ms", float64(median(worst))/float64(median(alone)), "one-delivery-alone")
}

// benchConsole: a repository's builds (the API list, its page, the events
// stream's snapshot) against a bare List of its Deployments selected by
// their label, and /api/v1/status against a metadata-only List of every
// build.
func benchConsole(b *testing.B, r *rig, fn *function) {
	ctx := context.Background()
	repo := r.seed.SeedRepo(7)
	deps := r.env.Client.AppsV1().Deployments(r.env.Namespace)
	repoSel := labels.Set{model.LabelRepo: model.RepoKey(repo)}.String()
	var bareRepo, bareMeta []time.Duration
	views := map[string][]time.Duration{}
	paths := map[string]string{
		"api":    "/api/v1/builds?repo=" + repo,
		"page":   "/repos/" + repo,
		"stream": "/api/v1/build-events?repo=" + repo,
		"status": "/api/v1/status",
	}
	meta, err := kube.NewClients(r.env.Config)
	if err != nil {
		b.Fatal(err)
	}
	for range 20 {
		t, err := timed(func() error {
			l, err := deps.List(ctx, metav1.ListOptions{LabelSelector: repoSel})
			if err == nil && len(l.Items) < r.seed.N/seedRepos {
				err = fmt.Errorf("listed %d Deployments of %s, want %d", len(l.Items), repo, r.seed.N/seedRepos)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		bareRepo = append(bareRepo, t)
		t, err = timed(func() error {
			_, _, err := kube.List(ctx, meta.Metadata.Resource(appsv1.SchemeGroupVersion.WithResource("deployments")).Namespace(r.env.Namespace).List,
				metav1.ListOptions{LabelSelector: model.LabelBuild}, func(*metav1.PartialObjectMetadata) (struct{}, bool) { return struct{}{}, false })
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		bareMeta = append(bareMeta, t)
		for name, path := range paths {
			if name == "stream" {
				t, err = fn.snapshot(path, r.seed.N/seedRepos)
			} else {
				t, err = fn.get(path)
			}
			if err != nil {
				b.Fatal(err)
			}
			views[name] = append(views[name], t)
		}
	}
	worst, worstName := time.Duration(0), ""
	for _, name := range []string{"api", "page", "stream"} {
		b.ReportMetric(ms(median(views[name])), name+"-p50-ms")
		if m := median(views[name]); m > worst {
			worst, worstName = m, name
		}
	}
	b.ReportMetric(ms(median(bareRepo)), "bare-repo-list-p50-ms")
	benchfig.Report(b, "console-repo-ratio", ms(worst), "ms", float64(worst)/float64(median(bareRepo)), "bare-repo-list("+worstName+")")
	st := median(views["status"])
	benchfig.Report(b, "console-status-ratio", ms(st), "ms", float64(st)/float64(median(bareMeta)), "metadata-list")
}

// snapshot reads the events stream until it has sent the snapshot of n
// builds.
func (f *function) snapshot(path string, n int) (time.Duration, error) {
	return timed(func() error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		events := 0
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				events++
				if events >= n {
					return nil
				}
			}
		}
		return fmt.Errorf("stream ended after %d events: %w", events, sc.Err())
	})
}

func freeAddress(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}
