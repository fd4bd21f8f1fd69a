// Command localrun runs the whole system on the local cluster (make run), or
// sends more sample deliveries to it (make replay). It is run from the
// project's root folder.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"runboat.dev/functions/localrun"
)

func main() {
	// SIGHUP: the terminal was closed; its processes stop as on Ctrl-C.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "localrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	root, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("failed to find the project folder: %w", err)
	}
	if _, err := os.Stat("go.work"); err != nil {
		return errors.New("run it from the project's root folder (make run)")
	}
	switch {
	case len(args) == 0:
		// Ctrl-C is for this process, not for the make that started it.
		defer localrun.TakeTerminal()()
		return localrun.Run(ctx, localrun.Options{Root: root, Out: os.Stdout})
	case len(args) == 1 && args[0] == "replay":
		return localrun.Replay(ctx, root, os.Stdout)
	default:
		return errors.New("usage: localrun [replay]")
	}
}
