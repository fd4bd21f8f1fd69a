// Package cli is what the job binaries share: their flags, logger,
// configuration and clients, around runner.Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
)

// JobQPS is a job's rate of requests to the API server when
// RUNBOAT_KUBE_QPS is 0: a pass lists the builds, then writes a few.
const JobQPS = 50

// Main runs the job with the command line args (without the program name)
// and returns the exit code: 0 when the run did its work (or found another
// run under way), 1 when it could not, 2 on a bad command line.
func Main(job runner.Job, args []string) int {
	fs := flag.NewFlagSet(job.Name(), flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "print the plan of one pass and write nothing")
	linger := fs.Duration("linger", 0, "after the first pass, keep reacting to changes of the builds until this long after the start (e.g. 50s)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *linger < 0 {
		fmt.Fprintf(os.Stderr, "%s: want no argument and a --linger of 0 or more\n", job.Name())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := runner.Options{DryRun: *dryRun, Linger: *linger}
	if err := run(ctx, job, opts, *logLevel, os.Stderr, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", job.Name(), err)
		return 1
	}
	return 0
}

func run(ctx context.Context, job runner.Job, opts runner.Options, logLevel string, logOut, out io.Writer) error {
	if _, err := logging.New(logOut, logLevel); err != nil {
		return err
	}
	var cfg runner.Config
	if err := config.Load(config.Environ(), &cfg); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	// Whatever quotes a secret back (an API's error echoing the request's
	// token) is redacted on its way out.
	logger, err := logging.New(logging.Redacting(logOut, config.SecretValues(&cfg)...), logLevel)
	if err != nil {
		return err
	}
	ctx = logging.Into(ctx, logger) // runner.Run adds the job's name
	logger.Debug().Object("config", cfg).Msg("configuration")
	qps, burst := cfg.Kube.Limits(JobQPS)
	restConfig, err := kube.Config(kube.Options{UserAgent: "runboat-" + job.Name(), QPS: qps, Burst: burst})
	if err != nil {
		return err
	}
	clients, err := kube.NewClients(restConfig)
	if err != nil {
		return err
	}
	env, err := runner.NewEnv(cfg, clients, job.Name(), runner.EnvOptions{Out: out, Logger: &logger})
	if err != nil {
		return err
	}
	return runner.Run(ctx, env, job, opts)
}
