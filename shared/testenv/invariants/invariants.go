// Package invariants checks, on a live namespace, the promises the webhook
// and the jobs keep between them whatever happens to them (kills, API
// errors, restarts, concurrency):
//
//   - no more init Jobs run at once than MAX_INITIALIZING, and never two
//     for one build;
//   - no two live builds (Deployments not being deleted) share an identity
//     (repository, target branch, pull request, commit);
//   - no object labelled with a build outlives the build's Deployment by
//     more than a grace period (the undeployer's cleanup, the garbage
//     collector and a half-made build completed by the next delivery all
//     take some time);
//   - once faults stop, every build settles (stopped, started, failed or
//     gone) within a bound, and every accepted delivery of a supported
//     branch ends as a build, or as an undeploy when a later one undeployed
//     its target.
//
// A Checker samples the namespace (Sample, or Start in the background) and
// keeps every breach it saw; tests fail on them, a soak reports them.
package invariants

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"runboat.dev/shared/model"
)

// DefaultGrace is how long an object labelled with a build may outlive the
// build's Deployment when Checker.Grace is zero.
const DefaultGrace = time.Minute

// Breach is one invariant seen broken.
type Breach struct {
	At time.Time
	// Kind names the invariant: init-quota, init-twice, duplicate, orphan,
	// unsettled, lost-delivery.
	Kind string
	What string
}

func (b Breach) String() string {
	return fmt.Sprintf("%s %s: %s", b.At.Format(time.TimeOnly), b.Kind, b.What)
}

// Checker samples one namespace. Make it with New.
type Checker struct {
	Client    kubernetes.Interface
	Metadata  metadata.Interface
	Namespace string
	// MaxInitializing is the quota of init Jobs running at once.
	MaxInitializing int
	// Grace defaults to DefaultGrace.
	Grace time.Duration

	mu       sync.Mutex
	samples  int
	breaches []Breach
	// orphans: when each object labelled with a build without a
	// Deployment was first seen so ("kind/name" to time).
	orphans  map[string]time.Time
	accepted []delivery
}

// New returns a Checker of namespace, whose init Jobs quota is
// maxInitializing, reading with cfg's credentials (a sample takes ten
// lists: its clients have no client-side rate limit, so that sampling
// never waits on it).
func New(cfg *rest.Config, namespace string, maxInitializing int) (*Checker, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to make the checker's client: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to make the checker's metadata client: %w", err)
	}
	return &Checker{Client: cs, Metadata: meta, Namespace: namespace, MaxInitializing: maxInitializing}, nil
}

// delivery is an accepted delivery: a build of ref, or an undeploy of its
// target.
type delivery struct {
	ref      model.Ref
	undeploy bool
}

// Accepted records a delivery the webhook accepted: one that makes a build
// of ref, or, with undeploy, one that undeploys ref's target (its branch or
// its pull request). Settled checks that each ended so: the accepted
// deliveries replayed in order tell which builds must exist and which must
// be gone. An eviction by MAX_DEPLOYED is not one of them: a namespace
// checked so must have room for its builds.
func (c *Checker) Accepted(ref model.Ref, undeploy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accepted = append(c.accepted, delivery{ref: ref, undeploy: undeploy})
}

// Report is what a Checker saw.
type Report struct {
	Samples  int
	Breaches []Breach
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d samples, %d breaches", r.Samples, len(r.Breaches))
	for _, x := range r.Breaches {
		b.WriteString("\n  ")
		b.WriteString(x.String())
	}
	return b.String()
}

// Report returns the samples taken and every breach seen so far.
func (c *Checker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Report{Samples: c.samples, Breaches: slices.Clone(c.breaches)}
}

// Start samples the namespace every interval until the returned stop is
// called, which waits for the sampling to end and returns the report. A
// sample that fails to read the cluster (a fault injected, the API server
// restarting) is not a breach: it is skipped.
func (c *Checker) Start(ctx context.Context, interval time.Duration) (stop func() Report) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait.UntilWithContext(ctx, func(ctx context.Context) { _, _ = c.Sample(ctx) }, interval)
	}()
	return func() Report {
		cancel()
		<-done
		return c.Report()
	}
}

// Sample reads the namespace once and returns the breaches of that
// sample, which the Checker also keeps. An error says the namespace could
// not be read; nothing is counted then.
func (c *Checker) Sample(ctx context.Context) ([]Breach, error) {
	s, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var found []Breach
	add := func(kind, format string, args ...any) {
		found = append(found, Breach{At: now, Kind: kind, What: fmt.Sprintf(format, args...)})
	}
	if n := len(s.runningInit); n > c.MaxInitializing {
		add("init-quota", "%d init Jobs run (%s), quota %d", n, strings.Join(s.runningInit, ", "), c.MaxInitializing)
	}
	for build, jobs := range s.initJobs {
		if len(jobs) > 1 {
			add("init-twice", "build %s has %d init Jobs (%s)", build, len(jobs), strings.Join(jobs, ", "))
		}
	}
	for id, names := range s.live {
		if len(names) > 1 {
			add("duplicate", "builds %s share the identity %s", strings.Join(names, ", "), id)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples++
	if c.orphans == nil {
		c.orphans = map[string]time.Time{}
	}
	seen := map[string]bool{}
	for _, o := range s.orphans {
		seen[o] = true
		first, ok := c.orphans[o]
		if !ok {
			c.orphans[o] = now
			first = now
		}
		if now.Sub(first) > c.grace() {
			add("orphan", "%s has outlived the Deployment of its build for %s", o, now.Sub(first).Round(time.Second))
		}
	}
	for o := range c.orphans {
		if !seen[o] {
			delete(c.orphans, o)
		}
	}
	c.breaches = append(c.breaches, found...)
	return found, nil
}

func (c *Checker) grace() time.Duration {
	if c.Grace > 0 {
		return c.Grace
	}
	return DefaultGrace
}

// Settled waits, for up to bound, until every build is settled (stopped,
// started or failed; undeploying ones are on their way to gone), no
// object outlives its build past the grace period, and every accepted
// delivery has ended as it should. When bound passes first, what is still
// unsettled is recorded as breaches and returned as an error.
func (c *Checker) Settled(ctx context.Context, bound time.Duration) error {
	// last is what the last sample read found unsettled; a read that
	// fails (the cluster coming back, the bound reached) keeps it.
	var last []string
	var readErr error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, bound, true, func(ctx context.Context) (bool, error) {
		s, err := c.read(ctx)
		if err != nil {
			readErr = err
			return false, nil //nolint:nilerr // a failed read is tried again until the bound; the last error is kept
		}
		last, readErr = c.unsettled(s), nil
		return len(last) == 0, nil
	})
	if last == nil && readErr != nil {
		last = []string{readErr.Error()}
	}
	if err == nil {
		return nil
	}
	now := time.Now()
	c.mu.Lock()
	for _, u := range last {
		kind := "unsettled"
		if strings.HasPrefix(u, "delivery ") {
			kind = "lost-delivery"
		}
		c.breaches = append(c.breaches, Breach{At: now, Kind: kind, What: u})
	}
	c.mu.Unlock()
	return fmt.Errorf("not settled after %s: %s", bound, strings.Join(last, "; "))
}

// unsettled lists what keeps the sample s from being settled.
func (c *Checker) unsettled(s *sample) []string {
	var out []string
	for name, st := range s.status {
		switch st {
		case model.StatusStopped, model.StatusStarted, model.StatusFailed:
		default:
			out = append(out, fmt.Sprintf("build %s is %s", name, st))
		}
	}
	// An orphan within its grace period is on its way out (the
	// undeployer's sweep, or a redelivery that completes its build).
	now := time.Now()
	c.mu.Lock()
	if c.orphans == nil {
		c.orphans = map[string]time.Time{}
	}
	for _, o := range s.orphans {
		first, ok := c.orphans[o]
		if !ok {
			c.orphans[o], first = now, now
		}
		if now.Sub(first) > c.grace() {
			out = append(out, o+" outlives the Deployment of its build")
		}
	}
	c.mu.Unlock()
	out = append(out, c.undelivered(s, s.all)...)
	slices.Sort(out)
	return out
}

// undelivered lists the accepted deliveries that have not ended as they
// asked in the sample s: a build delivery without its live build, an
// undeploy whose builds are still among remaining (every build, or only
// the live ones).
func (c *Checker) undelivered(s *sample, remaining map[string][]string) []string {
	var out []string
	for id, want := range c.outcomes() {
		switch {
		case want.build && len(s.live[id]) == 0:
			out = append(out, fmt.Sprintf("delivery of %s %s: no build", want.ref.TargetKey(), want.ref.Commit))
		case !want.build && len(remaining[id]) > 0:
			out = append(out, fmt.Sprintf("delivery undeploying %s: build %s still there", want.ref.TargetKey(), strings.Join(remaining[id], ", ")))
		}
	}
	slices.Sort(out)
	return out
}

// Delivered reads the namespace once and returns an error naming every
// accepted delivery that has not ended as it asked, counting a build being
// undeployed (its Deployment deleted, held by the cleanup finalizer) as
// gone: what the webhook alone does, before any job runs. Settled waits
// for more: the builds gone, and every build settled.
func (c *Checker) Delivered(ctx context.Context) error {
	s, err := c.read(ctx)
	if err != nil {
		return err
	}
	if u := c.undelivered(s, s.live); len(u) > 0 {
		return fmt.Errorf("deliveries not ended as they asked: %s", strings.Join(u, "; "))
	}
	return nil
}

// outcome is what the accepted deliveries leave of the build of ref: the
// build, or nothing.
type outcome struct {
	ref   model.Ref
	build bool
}

// outcomes replays the accepted deliveries in order: a build delivery
// wants its build, an undeploy wants every build of its target delivered
// before it gone (a later delivery of one of them wants it again).
func (c *Checker) outcomes() map[string]outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]outcome{}
	for _, d := range c.accepted {
		if !d.undeploy {
			out[identity(d.ref)] = outcome{ref: d.ref, build: true}
			continue
		}
		for id, o := range out {
			if o.ref.TargetKey() == d.ref.TargetKey() {
				out[id] = outcome{ref: o.ref}
			}
		}
	}
	return out
}

// sample is one reading of the namespace.
type sample struct {
	// live: the names of the live builds by identity; all: of every build,
	// those being undeployed included.
	live, all map[string][]string
	// status: the status of each build by name.
	status      map[string]model.Status
	runningInit []string
	// initJobs: the init Jobs not being deleted, by build.
	initJobs map[string][]string
	orphans  []string
}

// identity is what two live builds never share: the target (the
// repository and the branch or the pull request, as TargetKey says) and
// the commit, in any case.
func identity(ref model.Ref) string {
	return ref.TargetKey() + " " + strings.ToLower(ref.Commit)
}

// Labelled are the kinds of objects a build may have on the local cluster
// besides its Deployment, dependents included.
var Labelled = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "replicasets"},
	{Version: "v1", Resource: "pods"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Version: "v1", Resource: "services"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
}

func (c *Checker) read(ctx context.Context) (*sample, error) {
	sel := metav1.ListOptions{LabelSelector: model.LabelBuild}
	deps, err := c.Client.AppsV1().Deployments(c.Namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("failed to list the builds of %s: %w", c.Namespace, err)
	}
	s := &sample{live: map[string][]string{}, all: map[string][]string{}, status: map[string]model.Status{}, initJobs: map[string][]string{}}
	builds := map[string]bool{}
	for i := range deps.Items {
		d := &deps.Items[i]
		name := d.Labels[model.LabelBuild]
		builds[name] = true
		b, err := model.FromDeployment(d)
		if err != nil {
			s.status[name] = model.Status("unreadable (" + err.Error() + ")")
			continue
		}
		s.status[name] = b.Status
		s.all[identity(b.Ref)] = append(s.all[identity(b.Ref)], name)
		if d.DeletionTimestamp == nil {
			s.live[identity(b.Ref)] = append(s.live[identity(b.Ref)], name)
		}
	}
	jobs, err := c.Client.BatchV1().Jobs(c.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: model.LabelJobKind + "=" + string(model.JobInitialize),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list the init Jobs of %s: %w", c.Namespace, err)
	}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if j.DeletionTimestamp != nil {
			continue
		}
		if build := j.Labels[model.LabelBuild]; build != "" {
			s.initJobs[build] = append(s.initJobs[build], j.Name)
		}
		if phase, _ := model.JobOutcome(j); phase == model.JobRunning {
			s.runningInit = append(s.runningInit, j.Name)
		}
	}
	slices.Sort(s.runningInit)
	for _, r := range Labelled {
		list, err := c.Metadata.Resource(r).Namespace(c.Namespace).List(ctx, sel)
		if err != nil {
			return nil, fmt.Errorf("failed to list the %s of %s: %w", r.Resource, c.Namespace, err)
		}
		for _, o := range list.Items {
			if !builds[o.Labels[model.LabelBuild]] {
				s.orphans = append(s.orphans, r.Resource+"/"+o.Name)
			}
		}
	}
	slices.Sort(s.orphans)
	return s, nil
}
