package undeployer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	jt "runboat.dev/shared/testenv/jobstest"
)

func at(minutes int) time.Time { return jt.T0.Add(time.Duration(minutes) * time.Minute) }

// short names an action of the undeployer and its build by number.
func short(a runner.Action) string {
	switch a := a.(type) {
	case *evict:
		return fmt.Sprintf("evict #%d", jt.N(a.b))
	case *startCleanup:
		s := fmt.Sprintf("cleanup #%d %d/%d", jt.N(a.b), a.attempt, a.of)
		if a.killInit {
			s += " kill-init"
		}
		if a.running {
			s += " running"
		}
		if a.abandon != nil {
			s += " abandon"
		}
		return s
	case *finish:
		return fmt.Sprintf("finish #%d", jt.N(a.b))
	case *recordCleanupFailure:
		s := fmt.Sprintf("failed #%d %d/%d", jt.N(a.b), a.attempt, a.of)
		if a.final() {
			return s + " final"
		}
		return s + " retry " + a.retryAfter.Sub(jt.T0).String()
	case *deleteOrphans:
		return fmt.Sprintf("orphans %s %d", a.build, len(a.objects))
	}
	return ""
}

var settings = Settings{
	Quotas:  config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 3},
	Cleanup: config.Cleanup{DeploymentResourceTypes: config.ResourceTypes{"deployment"}},
	Jobs:    config.Jobs{CleanupAttempts: 3, CleanupBackoff: time.Minute, OrphanGracePeriod: 10 * time.Minute},
}

// cleanupJob is a cleanup Job of b created at T0+90m, in state, of
// attempt (no annotation when empty).
func cleanupJob(b *runner.Build, state jt.JobState, attempt string) batchv1.Job {
	j := jt.Job(b, model.JobCleanup, at(90), state, "BackoffLimitExceeded")
	if attempt != "" {
		j.Annotations = map[string]string{model.AnnotationAttempt: attempt}
	}
	return j
}

func orphan(name, buildName string, created time.Time, deleting bool) Object {
	o := Object{Resource: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}}
	o.Name = name
	o.Labels = map[string]string{model.LabelBuild: buildName}
	o.CreationTimestamp = metav1.NewTime(created)
	if deleting {
		o.DeletionTimestamp = ptr.To(metav1.NewTime(created))
	}
	return o
}

// planCase is a plan of the undeployer on builds numbered by their N.
type planCase struct {
	name   string
	builds []jt.Spec
	// jobs gives the Jobs read of the builds being undeployed, by number.
	jobs        func(bs map[int]*runner.Build) map[int][]batchv1.Job
	objects     []Object
	unsupported []int
	// noFinalizer are the builds whose finalizer is gone already.
	noFinalizer []int
	settings    func(*Settings)
	// at is the time of the plan, in minutes after T0.
	at   int
	want []string
	// wake is when the plan wakes, in minutes after T0; 0 for never.
	wake int
	// more checks the plan further.
	more func(t *testing.T, p runner.Plan)
}

func (tc planCase) run(t *testing.T) {
	bs := jt.Builds(tc.builds...)
	byN := map[int]*runner.Build{}
	for _, b := range bs {
		byN[jt.N(b)] = b
		if slices.Contains(tc.noFinalizer, jt.N(b)) {
			b.Deployment.Finalizers = nil
		}
	}
	in := Input{Builds: bs, Jobs: map[string][]batchv1.Job{}, Objects: tc.objects, Unsupported: map[string]bool{}}
	if tc.jobs != nil {
		for n, js := range tc.jobs(byN) {
			in.Jobs[byN[n].Name] = js
		}
	}
	for _, n := range tc.unsupported {
		in.Unsupported[byN[n].Name] = true
	}
	s := settings
	if tc.settings != nil {
		tc.settings(&s)
	}
	p := Plan(in, s, at(tc.at))
	jt.Check(t, p, short, tc.want...)
	jt.CheckWake(t, p, tc.wake)
	if tc.more != nil {
		tc.more(t, p)
	}
}

func TestPlan(t *testing.T) {
	started := jt.Spec{N: 1, Replicas: 1, Ready: 1, Deleting: true}
	stopped := jt.Spec{N: 1, Deleting: true}
	withAnn := func(ann ...string) []jt.Spec {
		s := jt.Spec{N: 1, Deleting: true, Annotations: map[string]string{}}
		for i := 0; i < len(ann); i += 2 {
			s.Annotations[ann[i]] = ann[i+1]
		}
		return []jt.Spec{s}
	}
	jobs := func(js ...func(b *runner.Build) batchv1.Job) func(bs map[int]*runner.Build) map[int][]batchv1.Job {
		return func(bs map[int]*runner.Build) map[int][]batchv1.Job {
			var out []batchv1.Job
			for _, j := range js {
				out = append(out, j(bs[1]))
			}
			return map[int][]batchv1.Job{1: out}
		}
	}
	initRunning := func(b *runner.Build) batchv1.Job { return jt.Job(b, model.JobInitialize, at(0), jt.Running, "") }
	cleanupIn := func(state jt.JobState, attempt string) func(b *runner.Build) batchv1.Job {
		return func(b *runner.Build) batchv1.Job { return cleanupJob(b, state, attempt) }
	}
	for _, tc := range []planCase{
		{
			name: "more than MAX_DEPLOYED: the least recently used candidates go, builds being undeployed not counted",
			builds: []jt.Spec{
				{N: 1, LastScaled: at(100)},                        // main, stopped
				{N: 2, LastScaled: at(5)},                          // main, stopped
				{N: 3, LastScaled: at(1)},                          // main, stopped
				{N: 4, Branch: "16.0", LastScaled: at(2)},          // the only build of 16.0: kept
				{N: 5, PR: 7, LastScaled: at(3)},                   // the only build of a PR: a candidate
				{N: 6, Init: model.InitFailed, LastScaled: at(50)}, // main, failed
				{N: 7, Replicas: 1, Ready: 1, LastScaled: at(0)},   // main, started: not a candidate
				{N: 8, Init: model.InitTodo, LastScaled: at(0)},    // main, the newest, initializing: kept
				{N: 9, Deleting: true, LastScaled: at(0)},          // undeploying: not counted
			},
			at: 200,
			// Undeploying build 9 has its finalizer and no Job: its
			// cleanup first. Deployed: 8, quota 3: 5 to undeploy, by last
			// use.
			want: []string{"cleanup #9 1/3", "evict #3", "evict #5", "evict #2", "evict #6", "evict #1"},
			more: func(t *testing.T, p runner.Plan) {
				if why := p.Actions[1].(*evict).why; !strings.Contains(why, "8 builds deployed, quota 3 (RUNBOAT_MAX_DEPLOYED)") {
					t.Errorf("why %q", why)
				}
			},
		},
		{
			// The newest of main (2), of 16.0 (4) and of acme/other main
			// (6) stay, whatever their last use; the others go, least
			// recently used first (the PR build was never scaled: its
			// creation counts).
			name: "the newest build of each branch is kept",
			builds: []jt.Spec{
				{N: 1, LastScaled: at(1)},
				{N: 2, LastScaled: at(0)},
				{N: 3, Branch: "16.0", LastScaled: at(0)},
				{N: 4, Branch: "16.0", LastScaled: at(1)},
				{N: 5, PR: 1},
				{N: 6, Repo: "acme/other", LastScaled: at(0)},
			},
			settings: func(s *Settings) { s.Quotas.MaxDeployed = 1 },
			at:       200,
			want:     []string{"evict #3", "evict #1", "evict #5"},
		},
		{
			name:        "within the quota, a build being undeployed without finalizer: nothing",
			builds:      []jt.Spec{{N: 1}, {N: 2}, {N: 3}, {N: 4, Deleting: true}},
			noFinalizer: []int{4},
			at:          200,
		},
		{name: "being undeployed, no Job: cleanup launched", builds: []jt.Spec{started}, at: 100, want: []string{"cleanup #1 1/3"}},
		{
			name:   "being undeployed, its init Job running: killed, cleanup launched",
			builds: []jt.Spec{started},
			jobs:   jobs(initRunning),
			at:     100,
			want:   []string{"cleanup #1 1/3 kill-init"},
		},
		{
			name:        "no repository rule matches the build any more: no cleanup Job can run, given up at once",
			builds:      []jt.Spec{started},
			jobs:        jobs(initRunning),
			unsupported: []int{1},
			at:          100,
			want:        []string{"cleanup #1 1/3 kill-init abandon"},
			more: func(t *testing.T, p runner.Plan) {
				if a := p.Actions[0].(*startCleanup).abandon; !a.final() || a.reason != "Unsupported: no repository rule matches the build any more" {
					t.Errorf("abandon %+v, want a final failure, unsupported", a)
				}
			},
		},
		{
			name:   "cleanup Job running, the build scaled down, its init Job gone: wait",
			builds: []jt.Spec{stopped},
			jobs:   jobs(cleanupIn(jt.Running, "1")),
			at:     100,
		},
		{
			name:   "cleanup Job running, but a run stopped before scaling down: finish starting it",
			builds: []jt.Spec{started},
			jobs:   jobs(cleanupIn(jt.Running, "1")),
			at:     100,
			want:   []string{"cleanup #1 1/3 running"},
		},
		{
			name:   "cleanup Job succeeded: finish",
			builds: []jt.Spec{started},
			jobs:   jobs(cleanupIn(jt.Complete, "1"), initRunning),
			at:     100,
			want:   []string{"finish #1"},
		},
		{
			name:        "no finalizer: nothing to do",
			builds:      []jt.Spec{started},
			noFinalizer: []int{1},
			at:          100,
		},
		{
			name:   "cleanup Job failed: recorded, next attempt after the backoff",
			builds: withAnn(),
			jobs:   jobs(cleanupIn(jt.Failed, "1")),
			at:     100,
			want:   []string{"failed #1 1/3 retry 1h41m0s"}, // now+1m
			more: func(t *testing.T, p runner.Plan) {
				if r := p.Actions[0].(*recordCleanupFailure).reason; r != "BackoffLimitExceeded: Job has reached the specified backoff limit" {
					t.Errorf("reason %q", r)
				}
			},
		},
		{
			name:   "failure recorded, the Job deleted: wait for the backoff",
			builds: withAnn(model.AnnotationCleanupAttempts, "1", model.AnnotationCleanupRetryAfter, model.FormatTime(at(101))),
			at:     100,
			wake:   101,
		},
		{
			name:   "failure recorded, the backoff over: attempt 2",
			builds: withAnn(model.AnnotationCleanupAttempts, "1", model.AnnotationCleanupRetryAfter, model.FormatTime(at(101))),
			at:     101,
			want:   []string{"cleanup #1 2/3"},
		},
		{
			name:   "the second failure waits twice as long",
			builds: withAnn(model.AnnotationCleanupAttempts, "1"),
			jobs:   jobs(cleanupIn(jt.Failed, "2")),
			at:     100,
			want:   []string{"failed #1 2/3 retry 1h42m0s"},
		},
		{
			name:   "the last attempt fails: given up",
			builds: withAnn(model.AnnotationCleanupAttempts, "2"),
			jobs:   jobs(cleanupIn(jt.Failed, "3")),
			at:     100,
			want:   []string{"failed #1 3/3 final"},
		},
		{
			name:   "given up and recorded: nothing more",
			builds: withAnn(model.AnnotationCleanupAttempts, "3", model.AnnotationCleanupFailure, "BackoffLimitExceeded"),
			jobs:   jobs(cleanupIn(jt.Failed, "3")),
			at:     100,
		},
		{
			name:   "given up, the Job deleted by hand but not the annotation: nothing more",
			builds: withAnn(model.AnnotationCleanupAttempts, "3", model.AnnotationCleanupFailure, "BackoffLimitExceeded"),
			at:     100,
		},
		{
			name:   "a failed cleanup Job being deleted: wait for it to go",
			builds: withAnn(model.AnnotationCleanupAttempts, "1"),
			jobs: jobs(func(b *runner.Build) batchv1.Job {
				j := cleanupJob(b, jt.Failed, "1")
				j.DeletionTimestamp = ptr.To(metav1.NewTime(at(100)))
				return j
			}),
			at: 100,
		},
		{
			name:   "two cleanup Jobs created in the same second: the name that sorts last decides, whatever the order read",
			builds: []jt.Spec{started},
			jobs: jobs(func(b *runner.Build) batchv1.Job {
				j := cleanupJob(b, jt.Complete, "1")
				j.Name += "-b"
				return j
			}, func(b *runner.Build) batchv1.Job {
				j := cleanupJob(b, jt.Failed, "1")
				j.Name += "-a"
				return j
			}),
			at:   100,
			want: []string{"finish #1"},
		},
		{
			name:     "RUNBOAT_NO_CLEANUP_JOB: resources deleted at once",
			builds:   []jt.Spec{stopped},
			settings: func(s *Settings) { s.Cleanup.NoCleanupJob = true },
			at:       100,
			want:     []string{"finish #1"},
		},
		{
			name:   "resources of builds without a Deployment, older than the grace period: deleted, by build",
			builds: []jt.Spec{{N: 1}},
			objects: []Object{
				orphan("a", "ghost", at(0), false),
				orphan("b", "ghost", at(95), false), // too young
				orphan("c", "ghost", at(0), true),   // going
				orphan("d", jt.Build(jt.Spec{N: 1}).Name, at(0), false),
				orphan("e", "alpha", at(0), false),
				orphan("f", "ghost", at(1), false),
			},
			at:   100,
			want: []string{"orphans alpha 1", "orphans ghost 2"},
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 7: time.Hour, 100: time.Hour} {
		if got := backoff(time.Minute, attempt); got != want {
			t.Errorf("backoff(1m, %d) = %s, want %s", attempt, got, want)
		}
	}
	if got := backoff(0, 5); got != 0 {
		t.Errorf("backoff(0, 5) = %s", got)
	}
}

// TestDryRunGolden: what --dry-run prints for a cluster where every action
// of the undeployer is due, which is what a real run does.
func TestDryRunGolden(t *testing.T) {
	attempts := func(n string) map[string]string { return map[string]string{model.AnnotationCleanupAttempts: n} }
	bs := jt.Builds(
		jt.Spec{N: 1, Replicas: 1, Ready: 1, Init: model.InitStarted, Deleting: true}, // its init Job runs
		jt.Spec{N: 2, Repo: "other/gone", Deleting: true},                             // no rule matches it
		jt.Spec{N: 3, Replicas: 1, Ready: 1, Deleting: true},                          // its cleanup Job runs, not scaled down
		jt.Spec{N: 4, Deleting: true},                                                 // its cleanup Job succeeded
		jt.Spec{N: 5, Deleting: true},                                                 // its first cleanup Job failed
		jt.Spec{N: 6, Deleting: true, Annotations: attempts("2")},                     // its last cleanup Job failed
		jt.Spec{N: 7, Deleting: true, Annotations: map[string]string{ // waits for the backoff
			model.AnnotationCleanupAttempts: "1", model.AnnotationCleanupRetryAfter: model.FormatTime(at(300)),
		}},
		jt.Spec{N: 8, LastScaled: at(10)},                    // least recently used
		jt.Spec{N: 9, PR: 4, LastScaled: at(20)},             // next
		jt.Spec{N: 10, LastScaled: at(30)},                   // kept: within the quota
		jt.Spec{N: 11, LastScaled: at(0)},                    // kept: the newest of main
		jt.Spec{N: 12, PR: 5, Replicas: 1, Ready: 1},         // started: not a candidate
		jt.Spec{N: 13, Branch: "16.0", Init: model.InitTodo}, // initializing: not a candidate
	)
	objs := []runtime.Object{}
	job := func(b int, kind model.JobKind, state jt.JobState, attempt string) {
		j := jt.Job(bs[b-1], kind, at(90), state, "BackoffLimitExceeded")
		if attempt != "" {
			j.Annotations = map[string]string{model.AnnotationAttempt: attempt}
		}
		objs = append(objs, &j)
	}
	job(1, model.JobInitialize, jt.Running, "")
	job(3, model.JobCleanup, jt.Running, "1")
	job(4, model.JobCleanup, jt.Complete, "1")
	job(5, model.JobCleanup, jt.Failed, "1")
	job(6, model.JobCleanup, jt.Failed, "3")
	orphan := func(name, build string, minutes int) {
		objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "builds", Labels: map[string]string{model.LabelBuild: build},
			CreationTimestamp: metav1.NewTime(at(minutes)),
		}})
	}
	orphan("bghost-vars", "bghost", 0)
	orphan("bghost-init-log", "bghost", 10)
	orphan("byoung-vars", "byoung", 195) // within the grace period
	cfg := jt.Config(config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 4})
	cfg.DeploymentResourceTypes = config.ResourceTypes{"deployment", "service", "pvc"}
	env := jt.Env(t, cfg, Name, at(200), jt.Objects(bs, objs...)...)
	jt.Golden(t, "dry-run", jt.DryRun(t, env, Job{}))
}
