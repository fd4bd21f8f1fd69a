package undeployer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	jt "runboat.dev/shared/testenv/jobstest"
)

var settings = Settings{
	Quotas:  config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 3},
	Cleanup: config.Cleanup{DeploymentResourceTypes: config.ResourceTypes{"deployment"}},
	Jobs:    config.Jobs{CleanupAttempts: 3, CleanupBackoff: time.Minute, OrphanGracePeriod: 10 * time.Minute},
}

func at(minutes int) time.Time { return jt.T0.Add(time.Duration(minutes) * time.Minute) }

func summary(p runner.Plan) []string {
	var out []string
	for _, a := range p.Actions {
		switch a := a.(type) {
		case *evict:
			out = append(out, "evict "+a.b.Name)
		case *startCleanup:
			s := fmt.Sprintf("cleanup %s %d/%d", a.b.Name, a.attempt, a.of)
			if a.killInit {
				s += " kill-init"
			}
			if a.running {
				s += " running"
			}
			out = append(out, s)
		case *finish:
			out = append(out, "finish "+a.b.Name)
		case *recordCleanupFailure:
			s := fmt.Sprintf("failed %s %d/%d", a.b.Name, a.attempt, a.of)
			if a.final() {
				s += " final"
			} else {
				s += " retry " + a.retryAfter.Sub(jt.T0).String()
			}
			out = append(out, s)
		case *deleteOrphans:
			out = append(out, fmt.Sprintf("orphans %s %d", a.build, len(a.objects)))
		default:
			out = append(out, fmt.Sprintf("%T", a))
		}
	}
	return out
}

func check(t *testing.T, p runner.Plan, want ...string) {
	t.Helper()
	if got := summary(p); !slices.Equal(got, want) {
		t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestPlanEvictions(t *testing.T) {
	bs := jt.Builds(
		jt.Spec{N: 1, LastScaled: at(100)},                        // main, stopped
		jt.Spec{N: 2, LastScaled: at(5)},                          // main, stopped
		jt.Spec{N: 3, LastScaled: at(1)},                          // main, stopped
		jt.Spec{N: 4, Branch: "16.0", LastScaled: at(2)},          // the only build of 16.0: kept
		jt.Spec{N: 5, PR: 7, LastScaled: at(3)},                   // the only build of a PR: a candidate
		jt.Spec{N: 6, Init: model.InitFailed, LastScaled: at(50)}, // main, failed
		jt.Spec{N: 7, Replicas: 1, Ready: 1, LastScaled: at(0)},   // main, started: not a candidate
		jt.Spec{N: 8, Init: model.InitTodo, LastScaled: at(0)},    // main, the newest, initializing: kept
		jt.Spec{N: 9, Deleting: true, LastScaled: at(0)},          // undeploying: not counted
	)
	// Deployed: 8 (9 is being undeployed), quota 3: 5 to undeploy, the
	// candidates (1, 2, 3, 5, 6) by last use.
	p := Plan(Input{Builds: bs}, settings, at(200))
	// Undeploying build 9 has its finalizer and no Job: its cleanup first.
	check(t, p,
		fmt.Sprintf("cleanup %s 1/3", bs[8].Name),
		"evict "+bs[2].Name, // last scaled 1
		"evict "+bs[4].Name, // 3
		"evict "+bs[1].Name, // 5
		"evict "+bs[5].Name, // 50
		"evict "+bs[0].Name, // 100
	)
	if !strings.Contains(p.Actions[1].(*evict).why, "8 builds deployed, quota 3 (RUNBOAT_MAX_DEPLOYED)") {
		t.Errorf("why %q", p.Actions[1].(*evict).why)
	}
}

func TestPlanKeepsNewestOfEachBranch(t *testing.T) {
	bs := jt.Builds(
		jt.Spec{N: 1, LastScaled: at(1)},
		jt.Spec{N: 2, LastScaled: at(0)},
		jt.Spec{N: 3, Branch: "16.0", LastScaled: at(0)},
		jt.Spec{N: 4, Branch: "16.0", LastScaled: at(1)},
		jt.Spec{N: 5, PR: 1},
		jt.Spec{N: 6, Repo: "acme/other", LastScaled: at(0)},
	)
	s := settings
	s.Quotas.MaxDeployed = 1
	// The newest of main (2), of 16.0 (4) and of acme/other main (6) stay,
	// whatever their last use; the others go, least recently used first
	// (the PR build was never scaled: its creation counts).
	check(t, Plan(Input{Builds: bs}, s, at(200)), "evict "+bs[2].Name, "evict "+bs[0].Name, "evict "+bs[4].Name)
}

func TestPlanWithinQuota(t *testing.T) {
	bs := jt.Builds(jt.Spec{N: 1}, jt.Spec{N: 2}, jt.Spec{N: 3}, jt.Spec{N: 4, Deleting: true})
	bs[3].Deployment.Finalizers = nil // gone with no cleanup left to do
	check(t, Plan(Input{Builds: bs}, settings, at(200)))
}

func undeploying(spec jt.Spec) *runner.Build {
	spec.Deleting = true
	return jt.Build(spec)
}

func TestPlanCleanup(t *testing.T) {
	now := at(100)
	b := undeploying(jt.Spec{N: 1, Replicas: 1, Ready: 1})
	in := func(jobs ...batchv1.Job) Input {
		return Input{Builds: []*runner.Build{b}, Jobs: map[string][]batchv1.Job{b.Name: jobs}}
	}
	initJob := jt.Job(b, model.JobInitialize, at(0), jt.Running, "")
	check(t, Plan(in(), settings, now), fmt.Sprintf("cleanup %s 1/3", b.Name))
	check(t, Plan(in(initJob), settings, now), fmt.Sprintf("cleanup %s 1/3 kill-init", b.Name))

	cleanup := jt.Job(b, model.JobCleanup, at(90), jt.Running, "")
	cleanup.Annotations = map[string]string{model.AnnotationAttempt: "1"}
	// Running, the build scaled down and its init Job gone: wait.
	stopped := undeploying(jt.Spec{N: 1})
	check(t, Plan(Input{Builds: []*runner.Build{stopped}, Jobs: map[string][]batchv1.Job{stopped.Name: {cleanup}}}, settings, now))
	// Running, but a run stopped before scaling down: finish starting it.
	check(t, Plan(in(cleanup), settings, now), fmt.Sprintf("cleanup %s 1/3 running", b.Name))

	cleanup.Status = jt.Job(b, model.JobCleanup, at(90), jt.Complete, "").Status
	check(t, Plan(in(cleanup, initJob), settings, now), "finish "+b.Name)

	// No finalizer: nothing to do.
	b.Deployment.Finalizers = nil
	check(t, Plan(in(), settings, now))
}

func TestPlanCleanupFailures(t *testing.T) {
	now := at(100)
	withAnn := func(ann map[string]string) *runner.Build {
		return undeploying(jt.Spec{N: 1, Annotations: ann})
	}
	failedJob := func(b *runner.Build, attempt string) batchv1.Job {
		j := jt.Job(b, model.JobCleanup, at(90), jt.Failed, "BackoffLimitExceeded")
		j.Annotations = map[string]string{model.AnnotationAttempt: attempt}
		return j
	}
	in := func(b *runner.Build, jobs ...batchv1.Job) Input {
		return Input{Builds: []*runner.Build{b}, Jobs: map[string][]batchv1.Job{b.Name: jobs}}
	}

	b := withAnn(nil)
	p := Plan(in(b, failedJob(b, "1")), settings, now)
	check(t, p, fmt.Sprintf("failed %s 1/3 retry 1h41m0s", b.Name)) // now+1m
	if r := p.Actions[0].(*recordCleanupFailure).reason; r != "BackoffLimitExceeded: Job has reached the specified backoff limit" {
		t.Errorf("reason %q", r)
	}

	// Recorded, the Job deleted: wait for the backoff, then attempt 2.
	b = withAnn(map[string]string{model.AnnotationCleanupAttempts: "1", model.AnnotationCleanupRetryAfter: at(101).Format(time.RFC3339)})
	p = Plan(in(b), settings, now)
	check(t, p)
	if !p.Wake.Equal(at(101)) {
		t.Errorf("wake %v, want %v", p.Wake, at(101))
	}
	check(t, Plan(in(b), settings, at(101)), fmt.Sprintf("cleanup %s 2/3", b.Name))

	// The second failure waits twice as long.
	b = withAnn(map[string]string{model.AnnotationCleanupAttempts: "1"})
	check(t, Plan(in(b, failedJob(b, "2")), settings, now), fmt.Sprintf("failed %s 2/3 retry 1h42m0s", b.Name))

	// The last attempt fails: given up, once.
	b = withAnn(map[string]string{model.AnnotationCleanupAttempts: "2"})
	check(t, Plan(in(b, failedJob(b, "3")), settings, now), fmt.Sprintf("failed %s 3/3 final", b.Name))
	b = withAnn(map[string]string{model.AnnotationCleanupAttempts: "3", model.AnnotationCleanupFailure: "BackoffLimitExceeded"})
	check(t, Plan(in(b, failedJob(b, "3")), settings, now))
	check(t, Plan(in(b), settings, now))

	// A failed Job being deleted: wait for it to go.
	b = withAnn(map[string]string{model.AnnotationCleanupAttempts: "1"})
	j := failedJob(b, "1")
	j.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	check(t, Plan(in(b, j), settings, now))
}

func TestPlanNoCleanupJob(t *testing.T) {
	b := undeploying(jt.Spec{N: 1})
	s := settings
	s.Cleanup.NoCleanupJob = true
	check(t, Plan(Input{Builds: []*runner.Build{b}}, s, at(100)), "finish "+b.Name)
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

func TestPlanOrphans(t *testing.T) {
	live := jt.Build(jt.Spec{N: 1})
	cm := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	obj := func(name, buildName string, created time.Time, deleting bool) Object {
		o := Object{Resource: cm}
		o.Name = name
		o.Labels = map[string]string{model.LabelBuild: buildName}
		o.CreationTimestamp = metav1.NewTime(created)
		if deleting {
			o.DeletionTimestamp = ptr.To(metav1.NewTime(created))
		}
		return o
	}
	in := Input{Builds: []*runner.Build{live}, Objects: []Object{
		obj("a", "ghost", at(0), false),
		obj("b", "ghost", at(95), false), // too young
		obj("c", "ghost", at(0), true),   // going
		obj("d", live.Name, at(0), false),
		obj("e", "alpha", at(0), false),
		obj("f", "ghost", at(1), false),
	}}
	p := Plan(in, settings, at(100))
	check(t, p, "orphans alpha 1", "orphans ghost 2")
}
