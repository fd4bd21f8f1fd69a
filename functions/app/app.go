// Package app assembles the function: configuration, clients, and the HTTP
// handler that serves the GitHub webhook and the console.
package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"runboat.dev/functions/console"
	"runboat.dev/functions/webhook"
	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
)

// Config is the function's configuration, read from RUNBOAT_* variables.
type Config struct {
	config.Builds
	config.Quotas
	config.GitHub
	config.Webhook
	config.API
	config.Jobs
	config.Kube
	Console
}

// Console is the console's own settings.
type Console struct {
	// ResetInterval is RUNBOAT_RESET_INTERVAL: the shortest time between two
	// resets of a build through the console.
	ResetInterval time.Duration `env:"RESET_INTERVAL" envDefault:"10m"`
	// ResponseStreaming is RUNBOAT_RESPONSE_STREAMING: on Lambda, the
	// function URL's invoke mode is RESPONSE_STREAM, so that the build
	// events stream flows (with BUFFERED, the default, a stream gives its
	// snapshot and ends, and EventSource connects again).
	ResponseStreaming bool `env:"RESPONSE_STREAMING" envDefault:"false"`
}

// Validate reports a reset interval that is not positive.
func (c Console) Validate() error {
	if c.ResetInterval <= 0 {
		return &config.FieldError{Var: config.Prefix + "RESET_INTERVAL", Err: errors.New("must be a positive duration")}
	}
	return nil
}

// NewHandler returns the function's handler, acting on the cluster of
// restConfig with one set of clients (one discovery cache) for the webhook,
// the console and the initializer pass.
func NewHandler(cfg Config, restConfig *rest.Config, logger zerolog.Logger) (http.Handler, error) {
	clients, err := kube.NewClients(restConfig)
	if err != nil {
		return nil, err
	}
	poster, err := github.PosterFor(cfg.GitHub, &logger)
	if err != nil {
		return nil, err
	}
	access, err := github.NewAccess(cfg.GitHub, nil)
	if err != nil {
		return nil, err
	}
	initEnv, err := runner.NewEnv(runner.Config{Builds: cfg.Builds, Quotas: cfg.Quotas, GitHub: cfg.GitHub, Jobs: cfg.Jobs},
		clients, initializer.Name, runner.EnvOptions{Statuses: poster, Logger: &logger})
	if err != nil {
		return nil, err
	}
	deployer := &reactingDeployer{
		Deployer: deploy.New(cfg.Builds, clients, clock.RealClock{}),
		env:      initEnv,
	}
	hook, err := webhook.New(webhook.Options{
		Secret:    []byte(cfg.Webhook.Secret.Value()),
		Insecure:  cfg.Insecure,
		Supported: cfg.Supported,
		Deployer:  deployer,
		Statuses:  poster,
		BaseURL:   cfg.GitHub.BaseURL,
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	operations, err := ops.New(ops.Options{
		Clients: clients,
		Builds:  cfg.Builds,
		// One identity per process: the console's Events name the instance
		// that holds the initializer's Lease in its passes.
		Events: ops.NewRecorder(clients.Typed, "console", initEnv.Identity, clock.RealClock{}),
	})
	if err != nil {
		return nil, err
	}
	con, err := console.New(console.Options{
		Client:        clients.Typed,
		Namespace:     cfg.Namespace,
		Ops:           console.FromOps(operations),
		Deployer:      deployer,
		Quotas:        cfg.Quotas,
		BaseURL:       cfg.GitHub.BaseURL,
		BuildDomain:   cfg.Domain,
		AdminUser:     cfg.AdminUser,
		AdminPasswd:   cfg.AdminPasswd,
		GitHubAccess:  access,
		ResetInterval: cfg.ResetInterval,
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(webhook.Path, hook)
	mux.Handle("/", con)
	return mux, nil
}

// reactingDeployer runs one initializer pass after it creates a build, so
// that the build's init Job starts at once when a slot is free instead of at
// the next tick of the initializer's CronJob. The pass runs under the
// initializer's Lease (it does nothing while a run holds it) and keeps the
// quota; its failure is logged and does not fail the delivery, which is
// already persisted.
type reactingDeployer struct {
	*deploy.Deployer
	env *runner.Env
}

func (d *reactingDeployer) Deploy(ctx context.Context, ref model.Ref) (string, bool, error) {
	name, created, err := d.Deployer.Deploy(ctx, ref)
	if err != nil || !created {
		return name, created, err
	}
	if err := initializer.RunOnce(ctx, d.env); err != nil {
		logging.From(ctx).Warn().Err(err).Str("build", name).Msg("initializer pass after deploy failed; the next scheduled run will do it")
	}
	return name, created, nil
}
