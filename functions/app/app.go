// Package app assembles the function: configuration, clients, and the HTTP
// handler that serves the GitHub webhook and the console.
package app

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"runboat.dev/functions/console"
	"runboat.dev/functions/webhook"
	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/ops"
)

// Config is the function's configuration, read from RUNBOAT_* variables.
type Config struct {
	config.Builds
	config.Quotas
	config.GitHub
	config.Webhook
	config.API
	Console
}

// Console is the console's own settings.
type Console struct {
	// ResetInterval is RUNBOAT_RESET_INTERVAL: the shortest time between two
	// resets of a build through the console.
	ResetInterval time.Duration `env:"RESET_INTERVAL" envDefault:"10m"`
}

// Validate reports a reset interval that is not positive.
func (c Console) Validate() error {
	if c.ResetInterval <= 0 {
		return &config.FieldError{Var: config.Prefix + "RESET_INTERVAL", Err: errors.New("must be a positive duration")}
	}
	return nil
}

// NewHandler returns the function's handler, acting on the cluster of
// restConfig.
func NewHandler(cfg Config, restConfig *rest.Config, logger zerolog.Logger) (http.Handler, error) {
	clients, err := kube.NewClients(restConfig)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("failed to create the metadata client: %w", err)
	}
	deployer := deploy.New(cfg.Builds, kube.NewApplier(clients.Dynamic, clients.Typed.Discovery()), meta, clock.RealClock{})
	poster, err := github.PosterFor(cfg.GitHub, &logger)
	if err != nil {
		return nil, err
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
		Client:  clients.Typed,
		Dynamic: clients.Dynamic,
		Builds:  cfg.Builds,
		Events:  ops.NewRecorder(clients.Typed, "runboat-console", "", clock.RealClock{}),
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
		GitHubToken:   cfg.Token,
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
