// Command runboat is the function: it serves the GitHub webhook, as an AWS
// Lambda behind a function URL when run by Lambda, or as a plain HTTP server
// with --listen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"runboat.dev/functions/app"
	"runboat.dev/functions/lambdaurl"
	"runboat.dev/functions/ssmparams"
	"runboat.dev/shared/config"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
)

func main() {
	listen := flag.String("listen", "", "serve plain HTTP on this address (e.g. localhost:8000) instead of running as a Lambda")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn or error")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "runboat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, logLevel string) error {
	if _, err := logging.New(os.Stderr, logLevel); err != nil {
		return err
	}
	// The secrets that are SSM parameters come first: the configuration
	// and the cluster's kubeconfig read them from the environment.
	if err := ssmparams.Load(ctx); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	var cfg app.Config
	if err := config.Load(config.Environ(), &cfg); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	// Whatever quotes a secret back (an API's error echoing the request's
	// token) is redacted on its way out.
	logger, err := logging.New(logging.Redacting(os.Stderr, config.SecretValues(&cfg)...), logLevel)
	if err != nil {
		return err
	}
	// No client-side rate limit unless RUNBOAT_KUBE_QPS sets one (see
	// config.Kube).
	qps, burst := cfg.Kube.Limits(-1)
	restConfig, err := kube.Config(kube.Options{UserAgent: "runboat-function", QPS: qps, Burst: burst})
	if err != nil {
		return err
	}
	h, err := app.NewHandler(cfg, restConfig, logger)
	if err != nil {
		return err
	}
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		// Every invocation's context derives from this one: it carries the
		// logger to the Lambda handler.
		base := lambda.WithContext(logging.Into(ctx, logger))
		if cfg.ResponseStreaming {
			lambda.StartWithOptions(lambdaurl.StreamingHandler(h), base)
		} else {
			lambda.StartWithOptions(lambdaurl.Handler(h), base)
		}
		return nil
	}
	if listen == "" {
		return errors.New("not running as a Lambda: give --listen ADDRESS to serve HTTP")
	}
	srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info().Str("listen", listen).Msg("serving")
	select {
	case err := <-errc:
		return fmt.Errorf("failed to serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("failed to shut down: %w", err)
	}
	return nil
}
