package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/manifests"
)

// TestE2EKilledJobProcesses: the three jobs run as their own commands, on
// a compressed CronJob cadence with --linger, as the manifests'
// ServiceAccount, while a build is delivered every 1.5 s and the webhook's
// reaction pass follows each delivery. Two such days run side by side, in
// two namespaces: in one, a job process is SIGKILLed every 3 to 8 s; in
// the other, none. A killed run cannot release its Lease, yet the day
// with kills initializes at least three quarters as many builds as the
// other (the next run, or the next reaction pass, sees that the holder's
// process has ended and takes the Lease at once), and neither day breaks
// an invariant. $RUNBOAT_KILLS_DURATION sets the length of the days.
func TestE2EKilledJobProcesses(t *testing.T) {
	t.Parallel()
	d := envDuration(t, "RUNBOAT_KILLS_DURATION", 2*time.Minute)
	bins := buildCommands(t, t.TempDir(), initializer.Name, stopper.Name, undeployer.Name)
	var calm, killed jobsDay
	t.Run("without kills", func(t *testing.T) {
		t.Parallel()
		calm = runJobsDay(t, bins, d, false)
	})
	t.Run("a job killed every 3 to 8 s", func(t *testing.T) {
		t.Parallel()
		killed = runJobsDay(t, bins, d, true)
	})
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		t.Logf("kills: %s days: without kills %d of %d builds initialized; with %d kills, %d of %d",
			d, calm.initialized, calm.deliveries, killed.kills, killed.initialized, killed.deliveries)
		if killed.kills == 0 {
			t.Error("no job process was killed")
		}
		// Waiting for each killed run's Lease to expire (15 s), the day
		// with kills initialized about 57 % of the other's; taken over at
		// once, about 96 %.
		if calm.initialized == 0 || 4*killed.initialized < 3*calm.initialized {
			t.Errorf("with kills %d builds initialized, without %d: want at least three quarters", killed.initialized, calm.initialized)
		}
	})
}

// killsCadence is a CronJob's minute, compressed, as in the soak.
const killsCadence = soakCadence

// jobsDay is what a day of TestE2EKilledJobProcesses did.
type jobsDay struct {
	deliveries, initialized, kills, runs int
}

// processes are the job processes running, by job.
type processes struct {
	mu      sync.Mutex
	running map[string]*exec.Cmd
}

func (p *processes) set(job string, cmd *exec.Cmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cmd == nil {
		delete(p.running, job)
		return
	}
	p.running[job] = cmd
}

// kill SIGKILLs one of the running processes, chosen with rnd, and says
// whose it was ("" when none runs).
func (p *processes) kill(t *testing.T, rnd *rand.Rand) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	jobs := slices.Sorted(func(yield func(string) bool) {
		for j := range p.running {
			if !yield(j) {
				return
			}
		}
	})
	if len(jobs) == 0 {
		return ""
	}
	job := jobs[rnd.IntN(len(jobs))]
	if err := p.running[job].Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill %s: %v", job, err)
	}
	return job
}

func runJobsDay(t *testing.T, bins map[string]string, d time.Duration, kills bool) jobsDay {
	q := config.Quotas{MaxInitializing: 2, MaxStarted: 3, MaxDeployed: 1000}
	h := newHarness(t, q, rule("^acme/", map[string]string{"initialize_kwok_delay": "1s"}))
	h.watch(h.checker(q.MaxInitializing))
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := manifests.WriteKubeconfig(kubeconfig, "runboat", h.e.Namespace, h.jobs); err != nil {
		t.Fatal(err)
	}
	environ := slices.Concat(os.Environ(), commandEnviron(t, h.cfg, kubeconfig))
	reaction := h.env(initializer.Name, nil)

	var day jobsDay
	var mu sync.Mutex
	count := func(n *int) {
		mu.Lock()
		defer mu.Unlock()
		*n++
	}
	procs := &processes{running: map[string]*exec.Cmd{}}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for job, bin := range bins {
		wg.Go(func() {
			for tick := time.Now(); ctx.Err() == nil; tick = tick.Add(killsCadence) {
				if !sleep(ctx, time.Until(tick)) {
					return
				}
				// Stopped at the end of the day as a CronJob's pod is, by
				// SIGTERM: the run releases its Lease.
				cmd := exec.CommandContext(ctx, bin, "--linger", (killsCadence - time.Second).String())
				cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
				cmd.WaitDelay = 10 * time.Second
				cmd.Env = environ
				var logs strings.Builder
				cmd.Stdout, cmd.Stderr = &logs, &logs
				if err := cmd.Start(); err != nil {
					if ctx.Err() == nil { // not the end of the day
						t.Errorf("start %s: %v", job, err)
					}
					return
				}
				procs.set(job, cmd)
				err := cmd.Wait()
				procs.set(job, nil)
				count(&day.runs)
				if status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && status.Signaled() && status.Signal() == syscall.SIGKILL {
					continue
				}
				if err != nil && ctx.Err() == nil {
					t.Errorf("a run of %s failed: %v\n%s", job, err, logs.String())
				}
			}
		})
	}
	if kills {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(3, 8))
			for sleep(ctx, 3*time.Second+time.Duration(rnd.Int64N(int64(5*time.Second)))) {
				if job := procs.kill(t, rnd); job != "" {
					count(&day.kills)
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; sleep(ctx, 1500*time.Millisecond); i++ {
			ref, err := model.NewRef("acme/kills", fmt.Sprintf("b%d", i), 0, sha(i))
			if err != nil {
				t.Error(err)
				return
			}
			if _, _, err := h.deployer.Deploy(h.ctx(), ref); err != nil {
				t.Errorf("delivery %d: %v", i, err)
				return
			}
			count(&day.deliveries)
			if err := initializer.RunOnce(h.ctx(), reaction); err != nil {
				t.Errorf("reaction pass after delivery %d: %v", i, err)
			}
		}
	})
	wg.Wait()
	for _, b := range h.builds() {
		switch b.Status {
		case model.StatusStopped, model.StatusStarting, model.StatusStarted, model.StatusStopping:
			day.initialized++
		case model.StatusFailed:
			t.Errorf("build %s failed to initialize", b.Name)
		}
	}
	t.Logf("%d deliveries, %d builds initialized, %d job runs, %d killed", day.deliveries, day.initialized, day.runs, day.kills)
	return day
}
