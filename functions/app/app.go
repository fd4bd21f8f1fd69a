// Package app assembles the function: configuration, clients, and the HTTP
// handler that serves the GitHub webhook.
package app

import (
	"fmt"
	"net/http"

	"github.com/rs/zerolog"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"runboat.dev/functions/webhook"
	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/kube"
)

// Config is the function's configuration, read from RUNBOAT_* variables.
type Config struct {
	config.Builds
	config.Quotas
	config.GitHub
	config.Webhook
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
	mux := http.NewServeMux()
	mux.Handle(webhook.Path, hook)
	return mux, nil
}
