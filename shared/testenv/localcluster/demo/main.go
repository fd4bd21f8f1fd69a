// Command runboat-demo is the program of the demo build's image
// (../../../../kubefiles/demo): what its init Job, its cleanup Job and its web
// container run. The local cluster builds it and packs it as the image
// DemoImage, imported into the real node's containerd.
//
//	runboat-demo init      say what a real build would do, and end (fails if RUNBOAT_DEMO_INIT_FAIL is set)
//	runboat-demo cleanup   the same for the cleanup
//	runboat-demo serve     answer HTTP on :8080 (or $PORT) with the build's name and commit
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "runboat-demo:", err)
		os.Exit(1)
	}
}

const usage = "usage: runboat-demo init|cleanup|serve"

func run(ctx context.Context, args []string, out io.Writer, getenv func(string) string) error {
	if len(args) != 1 {
		return errors.New(usage)
	}
	build, repo, commit := getenv("RUNBOAT_BUILD"), getenv("RUNBOAT_REPO"), getenv("RUNBOAT_COMMIT")
	switch args[0] {
	case "init":
		fmt.Fprintf(out, "initializing build %s: %s at commit %s\n", build, repo, commit)
		if v := getenv("RUNBOAT_DEMO_INIT_FAIL"); v != "" {
			return fmt.Errorf("failing the initialization, as RUNBOAT_DEMO_INIT_FAIL=%q asks", v)
		}
		fmt.Fprintln(out, "a real build would download the code and create its database here")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		fmt.Fprintln(out, "initialized")
		return nil
	case "cleanup":
		fmt.Fprintf(out, "cleaning up build %s\n", build)
		fmt.Fprintln(out, "a real build would drop its database here")
		fmt.Fprintln(out, "cleaned up")
		return nil
	case "serve":
		port := getenv("PORT")
		if port == "" {
			port = "8080"
		}
		l, err := net.Listen("tcp", ":"+port)
		if err != nil {
			return fmt.Errorf("failed to listen: %w", err)
		}
		fmt.Fprintf(out, "serving build %s on :%s\n", build, port)
		return serve(ctx, l, out, page(build, commit))
	default:
		return errors.New(usage)
	}
}

func page(build, commit string) []byte {
	return fmt.Appendf(nil, "runboat demo build %s\ncommit %s\n", build, commit)
}

// serve answers every GET with body until ctx ends, logging each request.
func serve(ctx context.Context, l net.Listener, out io.Writer, body []byte) error {
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(out, "%s %s\n", r.Method, r.URL.Path)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(body) // a client gone away is not the server's error
		}),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("failed to serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("failed to stop serving: %w", err)
	}
	return nil
}
