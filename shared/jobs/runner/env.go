// Package runner is what the initializer, the stopper and the undeployer have
// in common: their configuration and clients (Env), the Lease that makes a
// run the only one of its kind, the paginated, label-selected read of the
// builds with the adoption of the Python runboat's, the plan-then-apply pass
// (a conflict means read again and plan again; --dry-run prints the plan and
// writes nothing), and --linger, which keeps a run reacting to changes of
// the builds and their Jobs until a duration ends.
package runner

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/lease"
	"runboat.dev/shared/ops"
)

// Config is the configuration of the jobs, read from RUNBOAT_* variables.
// The three binaries share it: each uses the parts it needs (the builds and
// quotas always; the GitHub access for commit statuses, the cleanup and job
// settings).
type Config struct {
	config.Builds
	config.Quotas
	config.GitHub
	config.Cleanup
	config.Jobs
	config.Reconciler
	config.Kube
}

// MarshalZerologObject logs the configuration, secrets redacted.
func (c Config) MarshalZerologObject(e *zerolog.Event) {
	c.Builds.MarshalZerologObject(e)
	c.Quotas.MarshalZerologObject(e)
	c.GitHub.MarshalZerologObject(e)
	c.Cleanup.MarshalZerologObject(e)
	c.Jobs.MarshalZerologObject(e)
	c.Reconciler.MarshalZerologObject(e)
	c.Kube.MarshalZerologObject(e)
}

// DefaultLeaseDuration is how long a run's Lease lasts without renewal: a run
// killed without releasing it blocks the next runs of its job (and the
// webhook function's initializer pass) at most that long. The run renews it
// every third of it (5 s) and stops acting when it could not for two thirds
// (10 s). 15 s is what Kubernetes' leader election uses: short against the
// CronJobs' minute, so a node drain or an OOM kill costs a quarter of a
// tick, and long enough that an API server slow for a few seconds does not
// stop a healthy run.
const DefaultLeaseDuration = 15 * time.Second

// Env is what a job's pass needs: configuration, clients and the operations
// on builds.
type Env struct {
	Config Config
	// Clients are the clients the Env was made with.
	Clients *kube.Clients
	// Client and Metadata are the typed (protocol buffers) and metadata
	// clients of the Clients the Env was made with.
	Client   kube.Interface
	Metadata metadata.Interface
	// Ops performs the operations on builds, recording Events as the job.
	Ops *ops.Ops
	// Statuses posts commit statuses.
	Statuses github.StatusPoster
	// Clock decides every time-based choice.
	Clock clock.Clock
	// Identity is the holder of the Lease and the reporting instance of the
	// Events.
	Identity string
	// LeaseDuration is how long the run's Lease lasts without renewal.
	LeaseDuration time.Duration
	// Out receives the plan of a dry run.
	Out io.Writer
}

// EnvOptions are the optional parts of NewEnv.
type EnvOptions struct {
	// Clock defaults to the real clock.
	Clock clock.Clock
	// Identity defaults to lease.Identity().
	Identity string
	// Statuses defaults to what the GitHub configuration asks for.
	Statuses github.StatusPoster
	// LeaseDuration defaults to DefaultLeaseDuration.
	LeaseDuration time.Duration
	// Out defaults to standard output.
	Out io.Writer
	// Logger logs the choice of a StatusPoster.
	Logger *zerolog.Logger
}

// NewEnv returns the Env of the job named job (initializer, stopper or
// undeployer) acting on the cluster with clients.
func NewEnv(cfg Config, clients *kube.Clients, job string, opts EnvOptions) (*Env, error) {
	if clients == nil {
		return nil, errors.New("failed to create the job environment: no Kubernetes clients")
	}
	env := &Env{
		Config:        cfg,
		Clients:       clients,
		Client:        clients.Typed,
		Metadata:      clients.Metadata,
		Statuses:      opts.Statuses,
		Clock:         opts.Clock,
		Identity:      opts.Identity,
		LeaseDuration: opts.LeaseDuration,
		Out:           opts.Out,
	}
	if env.Clock == nil {
		env.Clock = clock.RealClock{}
	}
	if env.Identity == "" {
		env.Identity = lease.Identity()
	}
	if env.LeaseDuration == 0 {
		env.LeaseDuration = DefaultLeaseDuration
	}
	if env.Out == nil {
		env.Out = os.Stdout
	}
	if env.Statuses == nil {
		logger := opts.Logger
		if logger == nil {
			nop := zerolog.Nop()
			logger = &nop
		}
		poster, err := github.PosterFor(cfg.GitHub, logger)
		if err != nil {
			return nil, err
		}
		env.Statuses = poster
	}
	o, err := ops.New(ops.Options{
		Clients: clients,
		Builds:  cfg.Builds,
		Clock:   env.Clock,
		Events:  ops.NewRecorder(clients.Typed, job, env.Identity, env.Clock),
	})
	if err != nil {
		return nil, err
	}
	env.Ops = o
	return env, nil
}

// Namespace is the builds namespace.
func (e *Env) Namespace() string { return e.Config.Namespace }

// BuildURL is the target of a build's commit statuses: its page with ?live,
// which starts the build if needed and sends the reviewer to it.
func (e *Env) BuildURL(name string) string {
	return github.LiveURL(e.Config.BaseURL, name)
}
