package initializer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
	jt "runboat.dev/shared/testenv/jobstest"
)

var settings = Settings{
	Quotas:       config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 10},
	StartTimeout: 5 * time.Minute,
}

// summary names each action: its kind and build.
func summary(p runner.Plan) []string {
	var out []string
	for _, a := range p.Actions {
		switch a := a.(type) {
		case *launch:
			out = append(out, fmt.Sprintf("launch %s %d/%d", a.b.Name, a.slot, a.of))
		case *relaunch:
			out = append(out, "relaunch "+a.b.Name)
		case *markSucceeded:
			out = append(out, "succeeded "+a.b.Name)
		case *markFailed:
			s := "failed " + a.b.Name
			if a.failFast {
				s += " fast"
			}
			if a.recorded {
				s += " recorded"
			}
			out = append(out, s)
		default:
			out = append(out, fmt.Sprintf("%T", a))
		}
	}
	return out
}

func check(t *testing.T, p runner.Plan, want ...string) {
	t.Helper()
	got := summary(p)
	if !slices.Equal(got, want) {
		t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// firstFailed is the first action, which must mark a build failed.
func firstFailed(t *testing.T, p runner.Plan) *markFailed {
	t.Helper()
	if len(p.Actions) == 0 {
		t.Fatal("empty plan, want a build marked failed")
	}
	f, ok := p.Actions[0].(*markFailed)
	if !ok {
		t.Fatalf("first action %s, want a build marked failed", p.Actions[0])
	}
	return f
}

func started(b *runner.Build, st *Init) Input {
	return Input{Builds: []*runner.Build{b}, Init: map[string]*Init{b.Name: st}}
}

func TestPlanLaunchesOldestTodoWithinQuota(t *testing.T) {
	bs := jt.Builds(
		jt.Spec{N: 5, Init: model.InitTodo},
		jt.Spec{N: 1, Init: model.InitStarted},
		jt.Spec{N: 3, Init: model.InitTodo},
		jt.Spec{N: 4, Init: model.InitTodo},
		jt.Spec{N: 2, Init: model.InitSucceeded},
		jt.Spec{N: 6, Init: model.InitTodo, Deleting: true},
	)
	// Oldest first, as runner.ReadBuilds sorts them.
	slices.SortFunc(bs, func(a, b *runner.Build) int { return a.Created.Compare(b.Created) })
	running := bs[0] // N=1
	job := jt.Job(running, model.JobInitialize, jt.T0, jt.Running, "")
	in := Input{Builds: bs, Init: map[string]*Init{running.Name: {Jobs: []batchv1.Job{job}}}}
	p := Plan(in, settings, jt.T0.Add(time.Hour))
	check(t, p, fmt.Sprintf("launch %s 2/2", bs[2].Name)) // N=3: one slot free
	if !p.Wake.IsZero() {
		t.Errorf("wake %v, want none", p.Wake)
	}

	// Nothing running: two launches, the two oldest.
	in.Init[running.Name].Jobs[0] = jt.Job(running, model.JobInitialize, jt.T0, jt.Complete, "")
	check(t, Plan(in, settings, jt.T0.Add(time.Hour)),
		"succeeded "+running.Name,
		fmt.Sprintf("launch %s 1/2", bs[2].Name),
		fmt.Sprintf("launch %s 2/2", bs[3].Name))
}

func TestPlanQuotaFull(t *testing.T) {
	bs := jt.Builds(jt.Spec{N: 1, Init: model.InitStarted}, jt.Spec{N: 2, Init: model.InitStarted}, jt.Spec{N: 3, Init: model.InitTodo})
	in := Input{Builds: bs, Init: map[string]*Init{}}
	for _, b := range bs[:2] {
		in.Init[b.Name] = &Init{Jobs: []batchv1.Job{jt.Job(b, model.JobInitialize, jt.T0, jt.Running, "")}}
	}
	check(t, Plan(in, settings, jt.T0))
	// A started build not read counts too: never launch on a guess.
	delete(in.Init, bs[1].Name)
	check(t, Plan(in, settings, jt.T0))
	// Over the quota (lowered): still nothing, and nothing stopped.
	s := settings
	s.Quotas.MaxInitializing = 1
	check(t, Plan(in, s, jt.T0))
}

func TestPlanFailedJob(t *testing.T) {
	b := jt.Build(jt.Spec{N: 1, Init: model.InitStarted})
	job := jt.Job(b, model.JobInitialize, jt.T0, jt.Failed, "BackoffLimitExceeded")
	pod := jt.Pod(job, "p1", jt.T0, corev1.PodFailed, corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137},
	})
	other := jt.Pod(jt.Job(b, model.JobInitialize, jt.T0.Add(-time.Hour), jt.Failed, "x"), "old", jt.T0, corev1.PodFailed, corev1.ContainerState{})
	p := Plan(started(b, &Init{Jobs: []batchv1.Job{job}, Pods: []corev1.Pod{pod, other}}), settings, jt.T0.Add(time.Hour))
	check(t, p, "failed "+b.Name)
	f := firstFailed(t, p)
	want := "BackoffLimitExceeded: Job has reached the specified backoff limit; container main: OOMKilled, exit code 137"
	if f.reason != want {
		t.Errorf("reason %q, want %q", f.reason, want)
	}
	if len(f.pods) != 1 || f.pods[0].Name != "p1" {
		t.Errorf("pods for the log: %v, want the failed Job's only", f.pods)
	}

	// Its failure already recorded (a run stopped before marking it): the
	// log kept is not replaced.
	cm := &corev1.ConfigMap{Data: map[string]string{model.InitLogReasonKey: "r"}}
	check(t, Plan(started(b, &Init{Jobs: []batchv1.Job{job}, Log: cm}), settings, jt.T0), "failed "+b.Name+" recorded")
}

func TestPlanDeadlineExceeded(t *testing.T) {
	b := jt.Build(jt.Spec{N: 1, Init: model.InitStarted})
	job := jt.Job(b, model.JobInitialize, jt.T0, jt.Failed, "DeadlineExceeded")
	job.Status.Conditions[1].Message = "Job was active longer than specified deadline"
	p := Plan(started(b, &Init{Jobs: []batchv1.Job{job}}), settings, jt.T0)
	if got := firstFailed(t, p).reason; got != "DeadlineExceeded: Job was active longer than specified deadline" {
		t.Errorf("reason %q", got)
	}
}

func TestPlanFailFast(t *testing.T) {
	b := jt.Build(jt.Spec{N: 1, Init: model.InitStarted})
	job := jt.Job(b, model.JobInitialize, jt.T0, jt.Running, "")
	waiting := jt.Pod(job, "p1", jt.T0, corev1.PodPending, corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"},
	})
	in := started(b, &Init{Jobs: []batchv1.Job{job}, Pods: []corev1.Pod{waiting}})

	// Before the timeout: running, and the plan says when to look again.
	p := Plan(in, settings, jt.T0.Add(4*time.Minute))
	check(t, p)
	if want := jt.T0.Add(5 * time.Minute); !p.Wake.Equal(want) {
		t.Errorf("wake %v, want %v", p.Wake, want)
	}
	// After: failed at once, the Job to be deleted.
	p = Plan(in, settings, jt.T0.Add(5*time.Minute))
	check(t, p, "failed "+b.Name+" fast")
	if got := firstFailed(t, p).reason; got != "ImagePullBackOff: init pod p1 not started after 5m0s: container main: Back-off pulling image" {
		t.Errorf("reason %q", got)
	}

	// A pod pulling normally, or running, is never failed.
	for _, st := range []corev1.ContainerState{
		{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		{Running: &corev1.ContainerStateRunning{}},
	} {
		in.Init[b.Name].Pods = []corev1.Pod{jt.Pod(job, "p1", jt.T0, corev1.PodPending, st)}
		check(t, Plan(in, settings, jt.T0.Add(time.Hour)))
	}

	// Unschedulable.
	pod := jt.Pod(job, "p2", jt.T0, corev1.PodPending, corev1.ContainerState{})
	pod.Status.ContainerStatuses = nil
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/2 nodes are available"}}
	in.Init[b.Name].Pods = []corev1.Pod{pod}
	p = Plan(in, settings, jt.T0.Add(time.Hour))
	check(t, p, "failed "+b.Name+" fast")
	if got := firstFailed(t, p).reason; !strings.HasPrefix(got, "Unschedulable: init pod p2 not started after 5m0s: 0/2 nodes") {
		t.Errorf("reason %q", got)
	}

	// An init container waiting on a bad image counts too.
	pod = jt.Pod(job, "p3", jt.T0, corev1.PodPending, corev1.ContainerState{})
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "setup", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "InvalidImageName"}}}}
	in.Init[b.Name].Pods = []corev1.Pod{pod}
	check(t, Plan(in, settings, jt.T0.Add(time.Hour)), "failed "+b.Name+" fast")
}

func TestPlanJobGone(t *testing.T) {
	b := jt.Build(jt.Spec{N: 1, Init: model.InitStarted})
	other := jt.Build(jt.Spec{N: 2, Init: model.InitTodo})
	// Gone without trace: launched again, holding its slot.
	in := Input{Builds: []*runner.Build{b, other}, Init: map[string]*Init{b.Name: {}}}
	s := settings
	s.Quotas.MaxInitializing = 1
	check(t, Plan(in, s, jt.T0), "relaunch "+b.Name)

	// Its failure recorded, then the Job deleted, the run stopped before
	// marking the build: marked failed from what was recorded.
	in.Init[b.Name].Log = &corev1.ConfigMap{Data: map[string]string{model.InitLogReasonKey: "ErrImagePull: init pod p not started"}}
	p := Plan(in, s, jt.T0)
	check(t, p, "failed "+b.Name+" recorded", fmt.Sprintf("launch %s 1/1", other.Name))
	if got := firstFailed(t, p).reason; got != "ErrImagePull: init pod p not started" {
		t.Errorf("reason %q", got)
	}

	// Being deleted: wait, holding the slot.
	j := jt.Job(b, model.JobInitialize, jt.T0, jt.Running, "")
	j.DeletionTimestamp = ptr.To(metav1.NewTime(jt.T0))
	in.Init[b.Name] = &Init{Jobs: []batchv1.Job{j}}
	check(t, Plan(in, s, jt.T0))
}

func TestPlanNewestJobWins(t *testing.T) {
	b := jt.Build(jt.Spec{N: 1, Init: model.InitStarted})
	old := jt.Job(b, model.JobInitialize, jt.T0, jt.Failed, "BackoffLimitExceeded")
	old.Name += "-old"
	current := jt.Job(b, model.JobInitialize, jt.T0.Add(time.Minute), jt.Complete, "")
	check(t, Plan(started(b, &Init{Jobs: []batchv1.Job{old, current}}), settings, jt.T0), "succeeded "+b.Name)
}

func TestPlanUndeployingBuilds(t *testing.T) {
	running := jt.Build(jt.Spec{N: 1, Init: model.InitStarted, Deleting: true})
	ended := jt.Build(jt.Spec{N: 2, Init: model.InitStarted, Deleting: true})
	todo := jt.Build(jt.Spec{N: 3, Init: model.InitTodo, Deleting: true})
	waiting := jt.Build(jt.Spec{N: 4, Init: model.InitTodo})
	in := Input{
		Builds: []*runner.Build{running, ended, todo, waiting},
		Init: map[string]*Init{
			running.Name: {Jobs: []batchv1.Job{jt.Job(running, model.JobInitialize, jt.T0, jt.Running, "")}},
			ended.Name:   {Jobs: []batchv1.Job{jt.Job(ended, model.JobInitialize, jt.T0, jt.Complete, "")}},
		},
	}
	// Nothing is marked on builds being undeployed, none is launched; a
	// running init Job still takes its slot until the undeployer kills it.
	check(t, Plan(in, settings, jt.T0), fmt.Sprintf("launch %s 2/2", waiting.Name))
}

func TestPlanUnknownInitStatus(t *testing.T) {
	b := jt.Build(jt.Spec{N: 1, Init: "paused"})
	check(t, Plan(Input{Builds: []*runner.Build{b}}, settings, jt.T0))
}
