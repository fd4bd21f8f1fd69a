// Package localrun runs the whole system on the local cluster, as it runs in
// production: the function (webhook and console) serving on localhost, and
// the three jobs run the way their CronJobs run them, each with --linger so
// that builds move within seconds. It configures a demo repository on the
// demo kubefiles and sends sample deliveries.
package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/testenv/localcluster"
	"runboat.dev/shared/testenv/manifests"
)

const (
	// Namespace is where the local run deploys builds.
	Namespace = "runboat-local"
	// Listen is the address of the function.
	Listen = "127.0.0.1:8000"
	// Secret is the webhook secret of the local run.
	Secret = "local-webhook-secret"
	// WebhookURL is where sample deliveries go.
	WebhookURL = "http://" + Listen + "/webhooks/github"
	// Admin and AdminPassword are the console's admin credentials.
	Admin, AdminPassword = "admin", "admin"
	// jobLinger is how long each job run keeps reacting to changes; a new
	// run starts when one ends, as the CronJobs start one every minute.
	jobLinger = 60 * time.Second
)

var jobs = []string{"initializer", "stopper", "undeployer"}

// Options are what Run needs from the project.
type Options struct {
	// Root is the project's root folder.
	Root string
	// Out receives what a person should read. It must take writes from
	// several goroutines, as os.Stdout does: Run says that it stops while a
	// step may be writing.
	Out io.Writer
}

// Run runs the system until ctx ends, then stops what it started. The end of
// ctx (Ctrl-C) is a clean stop at whatever step Run is: it returns nil once
// every process it started has ended; what failed because the stop cut it
// short (a build, a delivery) is no error.
func Run(ctx context.Context, opts Options) error {
	said := make(chan struct{})
	defer context.AfterFunc(ctx, func() {
		fmt.Fprintln(opts.Out, "\nStopping...")
		close(said)
	})()
	err := run(ctx, opts)
	if ctx.Err() != nil {
		<-said
		fmt.Fprintln(opts.Out, "Stopped.")
		return nil
	}
	return err
}

func run(ctx context.Context, opts Options) error {
	c, err := localcluster.Default()
	if err != nil {
		return err
	}
	if err := c.Up(ctx, opts.Out); err != nil {
		return err
	}
	cache, err := localcluster.CacheDir()
	if err != nil {
		return err
	}
	work := filepath.Join(cache, "localrun")
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		return fmt.Errorf("failed to create the local run folder: %w", err)
	}
	admin, err := c.RESTConfig()
	if err != nil {
		return err
	}
	jobsConfig, functionConfig, err := prepareNamespace(ctx, admin)
	if err != nil {
		return err
	}
	jobsKubeconfig := filepath.Join(work, "jobs.kubeconfig")
	if err := manifests.WriteKubeconfig(jobsKubeconfig, "runboat", Namespace, jobsConfig); err != nil {
		return err
	}
	functionKubeconfig := filepath.Join(work, "function.kubeconfig")
	if err := manifests.WriteKubeconfig(functionKubeconfig, "runboat-function", Namespace, functionConfig); err != nil {
		return err
	}
	fmt.Fprintln(opts.Out, "Building the function and the jobs...")
	bin := filepath.Join(work, "bin")
	if err := build(ctx, opts.Root, bin); err != nil {
		return err
	}
	env, err := environment(opts.Root)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1+len(jobs))
	logs := filepath.Join(work, "logs")
	wg.Go(func() {
		err := supervise(ctx, exec.Command(filepath.Join(bin, "runboat"), "--listen", Listen),
			withEnv(env, "KUBECONFIG="+functionKubeconfig), filepath.Join(logs, "function.log"))
		if err != nil {
			errc <- fmt.Errorf("the function stopped: %w", err)
		}
	})
	for _, job := range jobs {
		wg.Go(func() {
			// As a CronJob would: one run after another, each lingering.
			for ctx.Err() == nil {
				cmd := exec.Command(filepath.Join(bin, job), "--linger", jobLinger.String())
				if err := supervise(ctx, cmd, withEnv(env, "KUBECONFIG="+jobsKubeconfig), filepath.Join(logs, job+".log")); err != nil && ctx.Err() == nil {
					fmt.Fprintf(opts.Out, "%s: %v (see its log); running it again\n", job, err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		})
	}
	defer wg.Wait()
	defer cancel()

	if err := waitServing(ctx, errc); err != nil {
		return err
	}
	if err := Replay(ctx, opts.Root, opts.Out); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, `
runboat runs on the local cluster.

  Console:   http://%s/   (admin: %s / %s)
  Webhook:   %s  (secret %q)
  Logs:      %s
  kubectl:   eval "$(make -s cluster-env)"; kubectl -n %s get deployments,jobs,pods

The three builds go from initializing to stopped within a minute; start one
from the console. "make replay" sends more deliveries. Ctrl-C stops the
function and the jobs (the cluster keeps running: make cluster-down).
`, Listen, Admin, AdminPassword, WebhookURL, Secret, logs, Namespace)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// Replay sends the sample deliveries to the running function.
func Replay(ctx context.Context, root string, out io.Writer) error {
	ds, err := SampleDeliveries(filepath.Join(root, "functions", "webhook", "testdata"))
	if err != nil {
		return err
	}
	for _, d := range ds {
		code, err := Send(ctx, WebhookURL, []byte(Secret), d)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "sent %-28s -> %d %s\n", d.What, code, http.StatusText(code))
		if code >= 300 {
			return fmt.Errorf("the webhook refused %s with %d (see the function's log)", d.What, code)
		}
	}
	return nil
}

// prepareNamespace creates the namespace and installs the manifests in it,
// CronJobs suspended (the jobs run here as processes), with the function's
// identity (manifests/function), and returns the configurations of the
// jobs' ServiceAccount and of the function's (its long-lived token).
func prepareNamespace(ctx context.Context, admin *rest.Config) (jobs, function *rest.Config, err error) {
	clients, err := kube.NewClients(admin)
	if err != nil {
		return nil, nil, err
	}
	_, err = clients.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, nil, fmt.Errorf("failed to create the namespace %s: %w", Namespace, err)
	}
	if jobs, err = manifests.InstallInto(ctx, clients, Namespace, manifests.TestSecretData, true); err != nil {
		return nil, nil, err
	}
	if function, err = manifests.InstallFunctionInto(ctx, clients, Namespace, nil); err != nil {
		return nil, nil, err
	}
	return jobs, function, nil
}

// environment is the configuration of the function and the jobs: a demo
// repository on the demo kubefiles.
func environment(root string) ([]string, error) {
	repos, err := json.Marshal([]map[string]any{{
		"repo":   "^codertocat/hello-world$",
		"branch": ".*",
		"builds": []map[string]any{{
			"image":          localcluster.DemoImage,
			"kubefiles_path": filepath.Join(root, "kubefiles", "demo"),
		}},
	}})
	if err != nil {
		return nil, fmt.Errorf("failed to encode the demo configuration: %w", err)
	}
	return append(os.Environ(),
		"RUNBOAT_REPOS="+string(repos),
		"RUNBOAT_BUILD_NAMESPACE="+Namespace,
		"RUNBOAT_BUILD_DOMAIN=builds.localhost",
		// Init Jobs of the demo take a few seconds, so that their progress
		// shows in the console.
		`RUNBOAT_BUILD_TEMPLATE_VARS={"initialize_kwok_delay": "8s", "cleanup_kwok_delay": "3s"}`,
		"RUNBOAT_GITHUB_WEBHOOK_SECRET="+Secret,
		"RUNBOAT_DISABLE_COMMIT_STATUSES=true",
		"RUNBOAT_BASE_URL=http://"+Listen,
		"RUNBOAT_API_ADMIN_USER="+Admin,
		"RUNBOAT_API_ADMIN_PASSWD="+AdminPassword,
		"RUNBOAT_MAX_INITIALIZING=2",
		"RUNBOAT_MAX_STARTED=2",
		"RUNBOAT_MAX_DEPLOYED=8",
	), nil
}

// withEnv returns env with more variables, in a slice of its own: the
// processes started at once must not share one backing array.
func withEnv(env []string, more ...string) []string {
	return append(slices.Clone(env), more...)
}

func build(ctx context.Context, root, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator),
		"./functions/cmd/runboat", "./jobs/cmd/initializer", "./jobs/cmd/stopper", "./jobs/cmd/undeployer")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Stopped, the go command stops its compilers before it exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("failed to build the binaries: %w", err)
	}
	return nil
}

// supervise runs cmd with env, its output appended to logFile, until it
// exits or ctx ends (then it is sent SIGTERM).
func supervise(ctx context.Context, cmd *exec.Cmd, env []string, logFile string) error {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("failed to open the log: %w", err)
	}
	defer f.Close() //nolint:errcheck // the process wrote through it; nothing to keep
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", filepath.Base(cmd.Path), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		kill := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
		defer kill.Stop()
		if err := <-done; err != nil && !stoppedBySignal(err) {
			return err
		}
		return nil
	}
}

// stoppedBySignal tells whether a process ended because it was signalled,
// as one asked to stop does.
func stoppedBySignal(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// waitServing waits until the function answers.
func waitServing(ctx context.Context, errc <-chan error) error {
	deadline := time.After(30 * time.Second)
	for {
		resp, err := http.Get("http://" + Listen + "/webhooks/github")
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errors.New("the function did not answer within 30s (see its log)")
		case <-time.After(200 * time.Millisecond):
		}
	}
}
