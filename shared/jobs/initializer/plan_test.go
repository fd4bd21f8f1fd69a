package initializer

import (
	"fmt"
	"slices"
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

// short names an action of the initializer and its build by number.
func short(a runner.Action) string {
	switch a := a.(type) {
	case *launch:
		switch {
		case a.again:
			return fmt.Sprintf("relaunch #%d", jt.N(a.b))
		case a.found != "":
			return fmt.Sprintf("found #%d %d/%d", jt.N(a.b), a.slot, a.of)
		}
		return fmt.Sprintf("launch #%d %d/%d", jt.N(a.b), a.slot, a.of)
	case *markSucceeded:
		return fmt.Sprintf("succeeded #%d", jt.N(a.b))
	case *markFailed:
		s := fmt.Sprintf("failed #%d", jt.N(a.b))
		if a.kill != nil {
			s += " kill"
		}
		if a.keepLog {
			s += " keep-log"
		}
		return s
	}
	return ""
}

// initJob is an init Job of b created at T0+minutes, in state.
func initJob(b *runner.Build, minutes int, state jt.JobState, reason string) batchv1.Job {
	return jt.Job(b, model.JobInitialize, jt.T0.Add(time.Duration(minutes)*time.Minute), state, reason)
}

// jobs is what was read of a build: these init Jobs.
func jobs(js ...batchv1.Job) *Init { return &Init{Jobs: js} }

// waiting is the status of a pod whose container waits on reason.
func waiting(reason string) corev1.PodStatus {
	return corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name: "main", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "Back-off pulling image"}},
	}}}
}

func deleting(j batchv1.Job) batchv1.Job {
	j.DeletionTimestamp = ptr.To(metav1.NewTime(jt.T0))
	return j
}

// planCase is a plan of the initializer on builds numbered by their N.
type planCase struct {
	name   string
	builds []jt.Spec
	// read gives what was read of the initialization of builds, by number;
	// every build to initialize not in it had its init Jobs read, and has
	// none, but those of notRead.
	read        func(bs map[int]*runner.Build) map[int]*Init
	notRead     []int
	unsupported []int
	// maxInit is MAX_INITIALIZING, 2 when 0.
	maxInit int
	// at is the time of the plan, in minutes after T0.
	at   int
	want []string
	// wake is when the plan wakes, in minutes after T0; 0 for never.
	wake int
	// reason is that of the first build marked failed, when set.
	reason string
	// more checks the plan further.
	more func(t *testing.T, p runner.Plan)
}

func (tc planCase) run(t *testing.T) {
	bs := jt.Builds(tc.builds...)
	// Oldest first, as runner.ReadBuilds sorts them.
	slices.SortFunc(bs, func(a, b *runner.Build) int { return a.Created.Compare(b.Created) })
	byN := map[int]*runner.Build{}
	for _, b := range bs {
		byN[jt.N(b)] = b
	}
	in := Input{Builds: bs, Init: map[string]*Init{}, Unsupported: map[string]bool{}}
	if tc.read != nil {
		for n, st := range tc.read(byN) {
			in.Init[byN[n].Name] = st
		}
	}
	for _, b := range bs {
		if _, ok := in.Init[b.Name]; !ok && b.InitStatus == model.InitTodo && !slices.Contains(tc.notRead, jt.N(b)) {
			in.Init[b.Name] = &Init{}
		}
	}
	for _, n := range tc.unsupported {
		in.Unsupported[byN[n].Name] = true
	}
	s := settings
	if tc.maxInit != 0 {
		s.Quotas.MaxInitializing = tc.maxInit
	}
	p := Plan(in, s, jt.T0.Add(time.Duration(tc.at)*time.Minute))
	jt.Check(t, p, short, tc.want...)
	jt.CheckWake(t, p, tc.wake)
	if tc.reason != "" {
		i := slices.IndexFunc(p.Actions, func(a runner.Action) bool { _, ok := a.(*markFailed); return ok })
		if i < 0 {
			t.Fatal("no build marked failed")
		}
		if got := p.Actions[i].(*markFailed).reason; got != tc.reason {
			t.Errorf("reason %q, want %q", got, tc.reason)
		}
	}
	if tc.more != nil {
		tc.more(t, p)
	}
}

func TestPlan(t *testing.T) {
	queue := []jt.Spec{
		{N: 5, Init: model.InitTodo},
		{N: 1, Init: model.InitStarted},
		{N: 3, Init: model.InitTodo},
		{N: 4, Init: model.InitTodo},
		{N: 2, Init: model.InitSucceeded},
		{N: 6, Init: model.InitTodo, Deleting: true},
	}
	twoRunning := []jt.Spec{{N: 1, Init: model.InitStarted}, {N: 2, Init: model.InitStarted}, {N: 3, Init: model.InitTodo}}
	readRunning := func(bs map[int]*runner.Build) map[int]*Init {
		return map[int]*Init{1: jobs(initJob(bs[1], 0, jt.Running, "")), 2: jobs(initJob(bs[2], 0, jt.Running, ""))}
	}
	one := []jt.Spec{{N: 1, Init: model.InitStarted}}
	startedAndTodo := []jt.Spec{{N: 1, Init: model.InitStarted}, {N: 2, Init: model.InitTodo}}
	// stuck is what was read of build 1: its running init Job and one pod,
	// pending, with status st.
	stuck := func(st corev1.PodStatus) func(bs map[int]*runner.Build) map[int]*Init {
		return func(bs map[int]*runner.Build) map[int]*Init {
			job := initJob(bs[1], 0, jt.Running, "")
			pod := jt.Pod(job, "p1", jt.T0, corev1.PodPending, corev1.ContainerState{})
			st.Phase = corev1.PodPending
			pod.Status = st
			return map[int]*Init{1: {Jobs: []batchv1.Job{job}, Pods: []corev1.Pod{pod}}}
		}
	}
	for _, tc := range []planCase{
		{
			name:   "one slot free: the oldest build to initialize is launched",
			builds: queue,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: jobs(initJob(bs[1], 0, jt.Running, ""))}
			},
			at:   60,
			want: []string{"launch #3 2/2"},
		},
		{
			name:   "the running Job completed: its slot and the other go to the two oldest",
			builds: queue,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: jobs(initJob(bs[1], 0, jt.Complete, ""))}
			},
			at:   60,
			want: []string{"succeeded #1", "launch #3 1/2", "launch #4 2/2"},
		},
		{
			name:   "a build to initialize whose Jobs were not read is not launched, nor any after it",
			builds: queue,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: jobs(initJob(bs[1], 0, jt.Complete, ""))}
			},
			notRead: []int{4},
			want:    []string{"succeeded #1", "launch #3 1/2"},
		},
		{name: "quota full: nothing launched", builds: twoRunning, read: readRunning},
		{
			name:   "a started build not read counts too: never launch on a guess",
			builds: twoRunning,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: jobs(initJob(bs[1], 0, jt.Running, ""))}
			},
		},
		{name: "over the quota (lowered): nothing launched, nothing stopped", builds: twoRunning, read: readRunning, maxInit: 1},
		{
			name:   "failed Job: the reason and the log of its own failed pod",
			builds: one,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				job := initJob(bs[1], 0, jt.Failed, "BackoffLimitExceeded")
				pod := jt.Pod(job, "p1", jt.T0, corev1.PodFailed, corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137},
				})
				other := jt.Pod(initJob(bs[1], -60, jt.Failed, "x"), "old", jt.T0, corev1.PodFailed, corev1.ContainerState{})
				return map[int]*Init{1: {Jobs: []batchv1.Job{job}, Pods: []corev1.Pod{pod, other}}}
			},
			at:     60,
			want:   []string{"failed #1 keep-log"},
			reason: "BackoffLimitExceeded: Job has reached the specified backoff limit; container main: OOMKilled, exit code 137",
			more: func(t *testing.T, p runner.Plan) {
				if f := p.Actions[0].(*markFailed); len(f.pods) != 1 || f.pods[0].Name != "p1" {
					t.Errorf("pods for the log: %v, want the failed Job's only", f.pods)
				}
			},
		},
		{
			name:   "failure recorded already (a run stopped before marking it): the log kept is not replaced",
			builds: one,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: {
					Jobs: []batchv1.Job{initJob(bs[1], 0, jt.Failed, "BackoffLimitExceeded")},
					Log:  &corev1.ConfigMap{Data: map[string]string{model.InitLogReasonKey: "r"}},
				}}
			},
			want: []string{"failed #1"},
		},
		{
			name:   "deadline exceeded",
			builds: one,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				job := initJob(bs[1], 0, jt.Failed, "DeadlineExceeded")
				job.Status.Conditions[1].Message = "Job was active longer than specified deadline"
				return map[int]*Init{1: jobs(job)}
			},
			want:   []string{"failed #1 keep-log"},
			reason: "DeadlineExceeded: Job was active longer than specified deadline",
		},
		{
			name:   "pod waiting on a bad image, before the start timeout: running, looked at again at the timeout",
			builds: one,
			read:   stuck(waiting("ImagePullBackOff")),
			at:     4,
			wake:   5,
		},
		{
			name:   "pod waiting on a bad image, at the start timeout: failed at once, the Job deleted",
			builds: one,
			read:   stuck(waiting("ImagePullBackOff")),
			at:     5,
			want:   []string{"failed #1 kill keep-log"},
			reason: "ImagePullBackOff: init pod p1 not started after 5m0s: container main: Back-off pulling image",
		},
		{name: "pod pulling normally: never failed", builds: one, read: stuck(waiting("ContainerCreating")), at: 60},
		{
			name:   "pod running: never failed",
			builds: one,
			read:   stuck(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}),
			at:     60,
		},
		{
			name:   "pod unschedulable past the start timeout: failed at once",
			builds: one,
			read: stuck(corev1.PodStatus{Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/2 nodes are available",
			}}}),
			at:     60,
			want:   []string{"failed #1 kill keep-log"},
			reason: "Unschedulable: init pod p1 not started after 5m0s: 0/2 nodes are available",
		},
		{
			name:   "init container waiting on a bad image past the start timeout: failed at once",
			builds: one,
			read: stuck(corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{{
				Name: "setup", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "InvalidImageName"}},
			}}}),
			at:   60,
			want: []string{"failed #1 kill keep-log"},
		},
		{
			name:    "init Job gone without trace: launched again, holding its slot",
			builds:  startedAndTodo,
			read:    func(map[int]*runner.Build) map[int]*Init { return map[int]*Init{1: jobs()} },
			maxInit: 1,
			want:    []string{"relaunch #1"},
		},
		{
			name:   "init Job gone after its failure was recorded (a run stopped before marking the build): marked failed from the record, its slot freed",
			builds: startedAndTodo,
			read: func(map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: {Log: &corev1.ConfigMap{Data: map[string]string{model.InitLogReasonKey: "ErrImagePull: init pod p not started"}}}}
			},
			maxInit: 1,
			want:    []string{"failed #1", "launch #2 1/1"},
			reason:  "ErrImagePull: init pod p not started",
		},
		{
			name:   "init Job being deleted: wait, holding the slot",
			builds: startedAndTodo,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: jobs(deleting(initJob(bs[1], 0, jt.Running, "")))}
			},
			maxInit: 1,
		},
		{
			name:        "init Job gone, no repository rule matches the build any more: failed, its slot freed",
			builds:      startedAndTodo,
			read:        func(map[int]*runner.Build) map[int]*Init { return map[int]*Init{1: jobs()} },
			unsupported: []int{1},
			maxInit:     1,
			want:        []string{"failed #1", "launch #2 1/1"},
			reason:      unsupportedReason,
		},
		{
			name:        "build to initialize that no repository rule matches any more: failed, taking no slot",
			builds:      []jt.Spec{{N: 1, Init: model.InitTodo}, {N: 2, Init: model.InitTodo}, {N: 3, Init: model.InitTodo}},
			unsupported: []int{1, 3},
			maxInit:     1,
			want:        []string{"failed #1", "failed #3", "launch #2 1/1"},
			reason:      unsupportedReason,
		},
		{
			name:   "build to initialize whose init Job is there already: only marked, holding its slot",
			builds: []jt.Spec{{N: 1, Init: model.InitTodo}, {N: 2, Init: model.InitTodo}},
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: jobs(initJob(bs[1], 0, jt.Complete, ""))}
			},
			maxInit: 1,
			want:    []string{"found #1 1/1"},
		},
		{
			name:   "build to initialize whose previous init Job is being deleted: waits for it, holding its slot",
			builds: []jt.Spec{{N: 1, Init: model.InitTodo}, {N: 2, Init: model.InitTodo}},
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: jobs(deleting(initJob(bs[1], 0, jt.Running, "")))}
			},
			maxInit: 1,
		},
		{
			name:   "the newest init Job decides",
			builds: one,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				old := initJob(bs[1], 0, jt.Failed, "BackoffLimitExceeded")
				old.Name += "-old"
				return map[int]*Init{1: jobs(old, initJob(bs[1], 1, jt.Complete, ""))}
			},
			want: []string{"succeeded #1"},
		},
		{
			name:   "two init Jobs created in the same second: the name that sorts last decides, whatever the order read",
			builds: one,
			read: func(bs map[int]*runner.Build) map[int]*Init {
				b := initJob(bs[1], 0, jt.Complete, "")
				b.Name += "-b"
				a := initJob(bs[1], 0, jt.Failed, "BackoffLimitExceeded")
				a.Name += "-a"
				return map[int]*Init{1: jobs(b, a)}
			},
			want: []string{"succeeded #1"},
		},
		{
			name: "builds being undeployed: nothing marked or launched; a running init Job holds its slot until the undeployer kills it",
			builds: []jt.Spec{
				{N: 1, Init: model.InitStarted, Deleting: true},
				{N: 2, Init: model.InitStarted, Deleting: true},
				{N: 3, Init: model.InitTodo, Deleting: true},
				{N: 4, Init: model.InitTodo},
			},
			read: func(bs map[int]*runner.Build) map[int]*Init {
				return map[int]*Init{1: jobs(initJob(bs[1], 0, jt.Running, "")), 2: jobs(initJob(bs[2], 0, jt.Complete, ""))}
			},
			want: []string{"launch #4 2/2"},
		},
		{name: "unknown init-status: left alone", builds: []jt.Spec{{N: 1, Init: "paused"}}},
	} {
		t.Run(tc.name, tc.run)
	}
}

// TestDryRunGolden: what --dry-run prints for a cluster where every action
// of the initializer is due, which is what a real run does.
func TestDryRunGolden(t *testing.T) {
	bs := jt.Builds(
		jt.Spec{N: 1, Init: model.InitStarted},                    // its init Job runs
		jt.Spec{N: 2, Init: model.InitStarted},                    // completed
		jt.Spec{N: 3, Init: model.InitStarted},                    // failed
		jt.Spec{N: 4, Init: model.InitStarted},                    // its pod cannot pull its image
		jt.Spec{N: 5, Init: model.InitStarted},                    // its init Job is gone
		jt.Spec{N: 6, Init: model.InitStarted},                    // gone, its failure recorded
		jt.Spec{N: 7, Init: model.InitTodo, Repo: "other/gone"},   // no rule matches it
		jt.Spec{N: 8, Init: model.InitTodo},                       // its init Job is there already
		jt.Spec{N: 9, Init: model.InitTodo},                       // launched
		jt.Spec{N: 10, Init: model.InitTodo},                      // its previous init Job is being deleted
		jt.Spec{N: 11, Init: model.InitTodo},                      // launched, the last slot
		jt.Spec{N: 12, Init: model.InitTodo},                      // no slot left
		jt.Spec{N: 13, Init: model.InitStarted, Deleting: true},   // undeployed, its init Job still runs
		jt.Spec{N: 14, Init: model.InitSucceeded, Branch: "16.0"}, // a Python runboat build, to adopt
	)
	delete(bs[13].Deployment.Labels, model.LabelCommit)
	delete(bs[13].Deployment.Labels, model.LabelTarget)
	running := jt.Job(bs[0], model.JobInitialize, jt.T0, jt.Running, "")
	failed := jt.Job(bs[2], model.JobInitialize, jt.T0, jt.Failed, "BackoffLimitExceeded")
	stuck := jt.Job(bs[3], model.JobInitialize, jt.T0, jt.Running, "")
	found := jt.Job(bs[7], model.JobInitialize, jt.T0, jt.Running, "")
	going := jt.Job(bs[9], model.JobInitialize, jt.T0, jt.Failed, "BackoffLimitExceeded")
	going.DeletionTimestamp = &metav1.Time{Time: jt.T0.Add(time.Hour)}
	going.Finalizers = []string{"batch.kubernetes.io/job-tracking"}
	undeployed := jt.Job(bs[12], model.JobInitialize, jt.T0, jt.Running, "")
	completed := jt.Job(bs[1], model.JobInitialize, jt.T0, jt.Complete, "")
	failedPod := jt.Pod(failed, bs[2].Name+"-init-1", jt.T0, corev1.PodFailed, corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1},
	})
	stuckPod := jt.Pod(stuck, bs[3].Name+"-init-1", jt.T0, corev1.PodPending, corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"},
	})
	recorded := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: model.InitLogName(bs[5].Name), Namespace: "builds", Labels: map[string]string{model.LabelBuild: bs[5].Name}},
		Data:       map[string]string{model.InitLogReasonKey: "ErrImagePull: init pod not started after 5m0s"},
	}
	objs := jt.Objects(bs, &running, &completed, &failed, &stuck, &found, &going, &undeployed, &failedPod, &stuckPod, recorded)
	env := jt.Env(t, jt.Config(config.Quotas{MaxInitializing: 7, MaxStarted: 6, MaxDeployed: 100}), Name, jt.T0.Add(time.Hour), objs...)
	jt.Golden(t, "dry-run", jt.DryRun(t, env, Job{}))
}
