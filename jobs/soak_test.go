package jobs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/testenv/faults"
)

// envDuration is the duration the variable name gives, def when it is not
// set; a test fails on one that is not a positive duration.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s: invalid duration %q", name, s)
	}
	return d
}

// soakFaults are the API faults of the soak: rarer than TestE2EFaultsConverge's,
// about one request in forty.
var soakFaults = []faults.Rule{
	{Kind: faults.Status, Code: http.StatusInternalServerError, Rate: 0.005},
	{Kind: faults.Status, Code: http.StatusServiceUnavailable, Rate: 0.005},
	{Kind: faults.Status, Code: http.StatusTooManyRequests, RetryAfter: time.Second, Rate: 0.005},
	{Kind: faults.ResetAfter, Methods: []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}, Rate: 0.01},
	{Kind: faults.Delay, Delay: 200 * time.Millisecond, Rate: 0.01},
}

// soakCadence is a CronJob's minute, compressed: each job runs every
// soakCadence and lingers for most of it.
const soakCadence = 10 * time.Second

// TestSoak runs a compressed day on the local cluster: deliveries (pushes
// to branches, pull requests opened, pushed to and closed, branches
// deleted) arrive every few hundred milliseconds through the webhook's
// deployer, a person starts, stops and resets builds from the console, and
// the three jobs run on their cadence with --linger, some of their runs
// killed half-way, all of it through injected API faults, while the
// invariant checker samples. Then the faults stop, what failed is
// delivered again, clean runs settle everything, and the figures are
// logged (`soak:` lines): samples, breaches, deliveries, builds created,
// initialized and undeployed, the time from a delivery to its init Job
// and from its init done to its stop. `make soak SOAK=30m` runs it for longer.
func TestSoak(t *testing.T) {
	t.Parallel()
	// $RUNBOAT_SOAK_DURATION (make soak), 40 s by default: the short
	// form the test command runs.
	day := envDuration(t, "RUNBOAT_SOAK_DURATION", 40*time.Second)
	q := config.Quotas{MaxInitializing: 2, MaxStarted: 3, MaxDeployed: 5000}
	h := newHarness(t, q, rule("^acme/", map[string]string{"initialize_kwok_delay": "1s"}))
	checker := h.checker(q.MaxInitializing)
	// A failed delivery leaves objects without a Deployment until it is
	// delivered again or the undeployer's sweep removes them.
	checker.Grace = h.cfg.Jobs.OrphanGracePeriod + 2*soakCadence
	stopChecker := checker.Start(context.Background(), 250*time.Millisecond)
	inj, err := faults.New(uint64(time.Now().UnixNano()), soakFaults...)
	if err != nil {
		t.Fatal(err)
	}
	rc := rest.CopyConfig(h.e.Config)
	rc.Wrap(inj.Wrap)
	clients, err := kube.NewClients(rc)
	if err != nil {
		t.Fatal(err)
	}
	s := &soak{h: h, deployer: deploy.New(h.cfg.Builds, clients, clock.RealClock{}), rnd: rand.New(rand.NewPCG(7, 7)),
		delivered: map[string]time.Time{}, launched: map[string]time.Time{}, initDone: map[string]time.Time{}, stopped: map[string]time.Time{}, seen: map[string]bool{}, gone: map[string]bool{}}
	accept := checker.Accepted

	ctx, cancel := context.WithTimeout(context.Background(), day)
	defer cancel()
	var wg sync.WaitGroup
	for _, job := range []runner.Job{initializer.Job{}, stopper.Job{}, undeployer.Job{}} {
		wg.Go(func() { s.cron(ctx, job, inj) })
	}
	wg.Go(func() { s.deliveries(ctx, accept) })
	wg.Go(func() { s.console(ctx) })
	wg.Go(func() { s.sample(ctx) })
	wg.Wait()
	inj.Stop()
	byRule, requests := inj.Injected()

	// What failed is delivered again, without faults, and clean runs
	// settle the rest.
	for _, d := range s.failedDeliveries() {
		checker.Accepted(d.ref, d.undeploy) // delivered again, now
		if err := d.do(h.deployer); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
	}
	jobs := []runner.Job{initializer.Job{}, stopper.Job{}, undeployer.Job{}}
	for _, job := range jobs {
		h.waitLeaseFree(job)
	}
	var unsettled map[model.Status]int
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("builds by status at the end: %v", unsettled)
		}
	})
	// Settling, the runs are not killed: they hold their Leases as the
	// CronJobs' do, long enough for an API server slowed by the load of the
	// day (a 3 s Lease, renewed within 2 s, was lost so).
	h.lease = runner.DefaultLeaseDuration
	// The builds delivered faster than MAX_INITIALIZING lets them be
	// initialized wait their turn: a longer day leaves more of them.
	backlog := 0
	for _, b := range h.builds() {
		if b.InitStatus == model.InitTodo {
			backlog++
		}
	}
	settle := 2*time.Minute + time.Duration(backlog)*3*time.Second
	t.Logf("soak: %d builds left to initialize when the day ended: settling for up to %s", backlog, settle)
	h.until("every build to settle", settle, jobs, func(bs map[string]model.Build) bool {
		unsettled = map[model.Status]int{}
		for _, b := range bs {
			unsettled[b.Status]++
		}
		for st := range unsettled {
			switch st {
			case model.StatusStopped, model.StatusStarted, model.StatusFailed:
			default:
				return false
			}
		}
		return h.counts(bs).Started <= q.MaxStarted
	})
	if err := checker.Settled(context.Background(), 2*time.Minute); err != nil {
		t.Error(err)
	}
	s.sampleOnce(context.Background())
	r := stopChecker()

	lat := s.latencies(func(s *soak) map[string]time.Time { return s.delivered }, func(s *soak) map[string]time.Time { return s.launched })
	stop := s.latencies(func(s *soak) map[string]time.Time { return s.initDone }, func(s *soak) map[string]time.Time { return s.stopped })
	t.Logf("soak: %s day, %d samples, %d breaches", day, r.Samples, len(r.Breaches))
	t.Logf("soak: %d deliveries (%d failed under faults, delivered again), %d console actions, %d job runs (%d killed, %d failed)",
		s.n.deliveries, s.n.failed, s.n.console, s.n.runs, s.n.killed, s.n.runErrors)
	t.Logf("soak: %d builds created, %d initialized, %d undeployed", len(s.seen), len(s.launched), len(s.gone))
	t.Logf("soak: delivery to init Job p50 %s, p99 %s (%d builds)", pct(lat, 50), pct(lat, 99), len(lat))
	t.Logf("soak: init done to stopped p50 %s, p99 %s (%d builds, as sampled)", pct(stop, 50), pct(stop, 99), len(stop))
	t.Logf("soak: %d faults injected into %d requests: %v", sum(byRule), requests, byRule)
	if len(r.Breaches) > 0 {
		t.Errorf("invariants broken: %s", r)
	}
	if len(s.launched) == 0 {
		t.Error("no build initialized during the day")
	}
}

// delivery is one of the soak: a build of ref, or an undeploy of its
// target, made by do.
type delivery struct {
	ref      model.Ref
	undeploy bool
	do       func(*deploy.Deployer) error
}

// soak is the state of TestSoak's day.
type soak struct {
	h        *harness
	deployer *deploy.Deployer

	mu  sync.Mutex
	rnd *rand.Rand
	// redo are the deliveries that failed, to deliver again.
	redo []delivery
	// delivered: when each build was delivered; launched: when its init
	// Job was first seen; initDone: when it was first seen initialized;
	// stopped: when it was first seen stopped after that; seen, gone:
	// builds seen, and seen gone.
	delivered, launched map[string]time.Time
	initDone, stopped   map[string]time.Time
	seen, gone          map[string]bool
	commits             int
	n                   struct{ deliveries, failed, console, runs, killed, runErrors int }
}

func (s *soak) intn(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rnd.IntN(n)
}

// sleep waits d, or until ctx ends, and says whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// cron runs job every soakCadence with --linger for most of it, through
// the faults; one run in four is killed after a few writes (its Lease left
// held, as a SIGKILL leaves it).
func (s *soak) cron(ctx context.Context, job runner.Job, inj *faults.Injector) {
	for ctx.Err() == nil {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, soakCadence)
		killed := s.intn(4) == 0
		wrap := inj.Wrap
		if killed {
			k := &killer{cancel: cancel}
			k.left.Store(int64(1 + s.intn(15)))
			wrap = func(rt http.RoundTripper) http.RoundTripper { k.next = inj.Wrap(rt); return k }
		}
		env := s.h.env(job.Name(), wrap, func(o *runner.EnvOptions) { o.LeaseDuration = 5 * time.Second })
		err := runner.Run(logging.Into(rctx, s.h.logger), env, job, runner.Options{Linger: soakCadence * 8 / 10})
		cancel()
		s.mu.Lock()
		s.n.runs++
		if killed {
			s.n.killed++
		} else if err != nil {
			s.n.runErrors++
		}
		s.mu.Unlock()
		if !sleep(ctx, soakCadence-time.Since(start)) {
			return
		}
	}
}

const (
	soakBranches = 6
	soakPRs      = 8
)

// deliveries sends a delivery every 300 to 900 ms: a push to a branch
// (half of them), a push to a pull request, a pull request closed, a
// branch deleted.
func (s *soak) deliveries(ctx context.Context, accept func(model.Ref, bool)) {
	for sleep(ctx, time.Duration(300+s.intn(600))*time.Millisecond) {
		s.mu.Lock()
		s.commits++
		commit := fmt.Sprintf("%040x", 0x50a6000+s.commits)
		s.n.deliveries++
		s.mu.Unlock()
		branch := fmt.Sprintf("branch-%d", s.intn(soakBranches))
		pr := 1 + s.intn(soakPRs)
		var d delivery
		switch k := s.intn(20); {
		case k < 10:
			ref, _ := model.NewRef("acme/app", branch, 0, commit) // valid by construction
			d = delivery{ref: ref, do: s.deploy(ref)}
		case k < 16:
			ref, _ := model.NewRef("acme/app", "main", pr, commit)
			d = delivery{ref: ref, do: s.deploy(ref)}
		case k < 18:
			ref, _ := model.NewRef("acme/app", "main", pr, commit)
			d = delivery{ref: ref, undeploy: true, do: func(d *deploy.Deployer) error {
				_, err := d.UndeployPR(s.h.ctx(), "acme/app", pr)
				return err
			}}
		default:
			ref, _ := model.NewRef("acme/app", branch, 0, commit)
			d = delivery{ref: ref, undeploy: true, do: func(d *deploy.Deployer) error {
				_, err := d.UndeployBranch(s.h.ctx(), "acme/app", branch)
				return err
			}}
		}
		accept(d.ref, d.undeploy)
		if err := d.do(s.deployer); err != nil {
			s.mu.Lock()
			s.n.failed++
			s.redo = append(s.redo, d)
			s.mu.Unlock()
		}
	}
}

func (s *soak) deploy(ref model.Ref) func(*deploy.Deployer) error {
	return func(d *deploy.Deployer) error {
		name, created, err := d.Deploy(s.h.ctx(), ref)
		if err == nil && created {
			s.mu.Lock()
			s.delivered[name] = time.Now()
			s.mu.Unlock()
		}
		return err
	}
}

func (s *soak) failedDeliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.redo)
}

// console starts, stops or resets a build every one to two seconds, as a
// person does from the console (without faults: the console's own answer
// is not what is soaked here).
func (s *soak) console(ctx context.Context) {
	ops := []func(*ops.Ops, context.Context, *appsv1.Deployment, string) (bool, error){(*ops.Ops).Start, (*ops.Ops).Start, (*ops.Ops).Stop, (*ops.Ops).Reset}
	for sleep(ctx, time.Duration(1000+s.intn(1000))*time.Millisecond) {
		list, err := s.h.e.Client.AppsV1().Deployments(s.h.e.Namespace).List(ctx, metav1.ListOptions{LabelSelector: model.LabelBuild})
		if err != nil || len(list.Items) == 0 {
			continue
		}
		d := list.Items[s.intn(len(list.Items))]
		op := ops[s.intn(len(ops))]
		_, err = s.h.console.Do(s.h.ctx(), d.Labels[model.LabelBuild], func(ctx context.Context, d *appsv1.Deployment) (bool, error) {
			return op(s.h.console, ctx, d, "soak")
		})
		if err == nil {
			s.mu.Lock()
			s.n.console++
			s.mu.Unlock()
		}
	}
}

// sample records, every 250 ms, the builds seen and gone and when each
// build's init Job was first seen.
func (s *soak) sample(ctx context.Context) {
	for sleep(ctx, 250*time.Millisecond) {
		s.sampleOnce(ctx)
	}
}

func (s *soak) sampleOnce(ctx context.Context) {
	deps, err := s.h.e.Client.AppsV1().Deployments(s.h.e.Namespace).List(ctx, metav1.ListOptions{LabelSelector: model.LabelBuild})
	if err != nil {
		return
	}
	jobs, err := s.h.e.Client.BatchV1().Jobs(s.h.e.Namespace).List(ctx, metav1.ListOptions{LabelSelector: model.LabelJobKind + "=" + string(model.JobInitialize)})
	if err != nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[string]bool{}
	for _, d := range deps.Items {
		name := d.Labels[model.LabelBuild]
		live[name], s.seen[name] = true, true
		if model.InitStatus(d.Annotations[model.AnnotationInitStatus]) != model.InitSucceeded {
			continue
		}
		if _, ok := s.initDone[name]; !ok {
			s.initDone[name] = now
		} else if _, ok := s.stopped[name]; !ok && model.StatusOf(&d) == model.StatusStopped {
			s.stopped[name] = now
		}
	}
	for name := range s.seen {
		if !live[name] {
			s.gone[name] = true
		}
	}
	for _, j := range jobs.Items {
		name := j.Labels[model.LabelBuild]
		if _, ok := s.launched[name]; !ok && name != "" {
			s.launched[name] = now
		}
	}
}

// latencies are the times from each build's event in from to its event
// in to, sorted: from a delivery to its init Job (delivered, launched),
// from its init done to its stop (initDone, stopped).
func (s *soak) latencies(from, to func(*soak) map[string]time.Time) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for name, at := range to(s) {
		if d, ok := from(s)[name]; ok {
			out = append(out, at.Sub(d))
		}
	}
	slices.Sort(out)
	return out
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100].Round(10 * time.Millisecond)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
