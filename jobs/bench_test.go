package jobs_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/testenv/benchfig"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// benchSizes are the numbers of builds of BenchmarkPass:
// $RUNBOAT_BENCH_BUILDS (comma separated), 1000 by default.
func benchSizes(b *testing.B) []int {
	s := os.Getenv("RUNBOAT_BENCH_BUILDS")
	if s == "" {
		s = "1000"
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("RUNBOAT_BENCH_BUILDS: invalid size %q", f)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkPass measures one pass of each job over many builds on the local
// API server: wall time (ns/op), allocations (B/op, allocs/op), API
// requests (req/op), and the peak resident memory of the test process so
// far (maxrss-MB, setup included), next to a bare paginated list of the same
// Deployments. The builds' Deployments are created directly: all
// initialized and stopped, but a few to initialize, plus one ConfigMap per
// build (the undeployer lists a build's resources to find orphans).
//
//	RUNBOAT_BENCH_BUILDS=1000,10000 go test -run '^$' -bench Pass -benchtime 5x ./
func BenchmarkPass(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("builds=%d", n), func(b *testing.B) {
			e := e2e.New(b)
			cfg := runner.Config{
				Builds: config.Builds{
					Repos:     config.RepoRules{rule("^acme/", nil)},
					Namespace: e.Namespace,
					Domain:    "runboat.test",
				},
				Quotas:  config.Quotas{MaxInitializing: 2, MaxStarted: 6, MaxDeployed: n + 100},
				GitHub:  config.GitHub{DisableCommitStatuses: true, BaseURL: "http://runboat.test"},
				Cleanup: config.Cleanup{DeploymentResourceTypes: config.ResourceTypes{"deployment", "service", "ingress", "configmap", "secret", "pvc", "job"}},
				Jobs:    config.Jobs{InitStartTimeout: 5 * time.Minute, CleanupAttempts: 3, CleanupBackoff: time.Minute, OrphanGracePeriod: 10 * time.Minute},
			}
			e2e.CreateBuilds(b, e, e2e.Seed{N: n, TodoEvery: 200, ConfigMaps: true, Image: image})

			var bare time.Duration
			worst, worstJob := time.Duration(0), ""
			b.Run("bare-list", func(b *testing.B) {
				c := &counter{}
				env := benchEnv(b, cfg, e.Config, "list", c)
				list := env.Client.AppsV1().Deployments(env.Namespace()).List
				opts := metav1.ListOptions{LabelSelector: runner.BuildSelector().String()}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					count := 0
					if _, _, err := kube.List(context.Background(), list, opts, func(*appsv1.Deployment) (struct{}, bool) {
						count++
						return struct{}{}, false
					}); err != nil {
						b.Fatal(err)
					}
					if count != n {
						b.Fatalf("listed %d Deployments, want %d", count, n)
					}
				}
				report(b, c)
				bare = b.Elapsed() / time.Duration(b.N)
			})
			for _, job := range []runner.Job{initializer.Job{}, stopper.Job{}, undeployer.Job{}} {
				b.Run(job.Name(), func(b *testing.B) {
					c := &counter{}
					env := benchEnv(b, cfg, e.Config, job.Name(), c)
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if err := runner.Run(context.Background(), env, job, runner.Options{}); err != nil {
							b.Fatal(err)
						}
					}
					report(b, c)
					if d := b.Elapsed() / time.Duration(b.N); d > worst {
						worst, worstJob = d, job.Name()
					}
				})
			}
			if n == benchSizes(b)[len(benchSizes(b))-1] && bare > 0 {
				size := fmt.Sprint(n)
				if n%1000 == 0 {
					size = fmt.Sprintf("%dk", n/1000)
				}
				benchfig.Report(b, "job-pass-"+size+"-ratio", float64(worst)/float64(time.Millisecond), "ms",
					float64(worst)/float64(bare), "bare-list("+worstJob+")")
				rss, job := jobsPeakRSS(b, e, cfg)
				benchfig.Report(b, "job-rss-mb-"+size, rss, "MB", rss/cronJobMemoryLimitMB, "cronjob-limit-256Mi("+job+")")
			}
		})
	}
}

func benchEnv(b *testing.B, cfg runner.Config, admin *rest.Config, job string, c *counter) *runner.Env {
	b.Helper()
	rc := rest.CopyConfig(admin)
	rc.QPS, rc.Burst = 50, 100 // the jobs' defaults (kube.Config)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { c.next = rt; return c })
	clients, err := kube.NewClients(rc)
	if err != nil {
		b.Fatal(err)
	}
	env, err := runner.NewEnv(cfg, clients, job, runner.EnvOptions{Statuses: github.NoopStatusPoster{}, Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	return env
}

// peakRSSEnv set makes this test binary run the command of its arguments,
// its output discarded, and print that command's peak resident memory in
// KiB instead of running the tests. The kernel counts in a child's peak
// the memory of its parent at the fork (a benchmark's, hundreds of MB):
// this process, started afresh, is small.
const peakRSSEnv = "RUNBOAT_BENCH_PEAK_RSS"

func TestMain(m *testing.M) {
	if os.Getenv(peakRSSEnv) == "" {
		os.Exit(m.Run())
	}
	// The child's peak counts this process's resident memory at the fork:
	// a peak not above it says only that.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var atFork int64
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			atFork, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintln(os.Stderr, "no resource usage")
		os.Exit(1)
	}
	if atFork == 0 || ru.Maxrss <= atFork {
		fmt.Fprintf(os.Stderr, "the peak RSS of %s (%d KiB) is not above this process's at the fork (%d KiB)\n", os.Args[1], ru.Maxrss, atFork)
		os.Exit(1)
	}
	fmt.Println(ru.Maxrss)
	os.Exit(0)
}

// cronJobMemoryLimitMB is the memory limit of the jobs' CronJobs in the
// manifests, 256 MiB, in MB.
const cronJobMemoryLimitMB = 256 * 1024 * 1024 / 1e6

// jobsPeakRSS builds each job's command and runs it, as its own process
// with the GOMEMLIMIT of its CronJob, for one --dry-run pass over the namespace of e (a dry run reads and plans
// as a run does; the writes of a run are a few requests): it returns the
// highest peak resident memory of the three, in MB, and whose it is.
func jobsPeakRSS(b *testing.B, e *e2e.Env, cfg runner.Config) (float64, string) {
	b.Helper()
	worst, worstJob := 0.0, ""
	jobs := []string{initializer.Name, stopper.Name, undeployer.Name}
	bins := buildCommands(b, b.TempDir(), jobs...)
	for _, job := range jobs {
		// Run through this test binary as a small parent (see TestMain): a
		// child's peak RSS counts its parent's memory at the fork.
		gml, err := manifests.CronJobEnv("runboat-"+job, "GOMEMLIMIT")
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], bins[job], "--dry-run")
		cmd.Env = slices.Concat(os.Environ(), commandEnviron(b, cfg, e.Cluster.Kubeconfig()),
			[]string{"GOMEMLIMIT=" + gml, peakRSSEnv + "=1"}) // GOMEMLIMIT as its CronJob gives it
		var out, logs strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &logs
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s --dry-run: %v\n%s", job, err, logs.String())
		}
		kb, err := strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
		if err != nil {
			b.Fatalf("%s: the peak RSS printed: %q", job, out.String())
		}
		rss := kb * 1024 / 1e6
		b.Logf("%s --dry-run over the namespace: peak RSS %.1f MB", job, rss)
		if rss > worst {
			worst, worstJob = rss, job
		}
	}
	return worst, worstJob
}

func report(b *testing.B, c *counter) {
	b.ReportMetric(float64(c.n.Load())/float64(b.N), "req/op")
	b.ReportMetric(maxRSS(), "maxrss-MB")
}

// maxRSS is the peak resident memory of the test process so far, in MB:
// an upper bound of a job's (the process also made the builds and ran the
// other jobs); jobsPeakRSS measures each job alone.
func maxRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}
