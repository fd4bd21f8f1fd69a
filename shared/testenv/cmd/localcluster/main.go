// Command localcluster builds, starts and stops the local Kubernetes control
// plane used for development and tests.
//
//	localcluster up       build what is missing, start the cluster (no-op if running)
//	localcluster down     stop the cluster; no process, and nothing of its real node, is left
//	localcluster status   say whether it runs, and how to reach it
//	localcluster env      print the shell lines that point kubectl at it
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"runboat.dev/shared/testenv/localcluster"
)

const usage = "usage: localcluster up|down|status|env"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New(usage)
	}
	c, err := localcluster.Default()
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
		if err := c.Up(ctx, out); err != nil {
			return err
		}
		printEnv(out, c)
		return nil
	case "down":
		if err := c.Down(ctx, out); err != nil {
			return err
		}
		left, err := c.Processes()
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return fmt.Errorf("control plane processes still running: %v", left)
		}
		nodeLeft, err := c.NodeLeftovers(ctx)
		if err != nil {
			return err
		}
		if len(nodeLeft) > 0 {
			return fmt.Errorf("left of the real node: %q", nodeLeft)
		}
		fmt.Fprintln(out, "The local cluster is stopped.")
		return nil
	case "status":
		if err := c.Ready(ctx); err != nil {
			return fmt.Errorf("the local cluster is not running: %w", err)
		}
		fmt.Fprintf(out, "The local cluster is running (Kubernetes %s).\n", c.KubeVersion())
		printEnv(out, c)
		return nil
	case "env":
		fmt.Fprintf(out, "export KUBECONFIG=%s\nexport PATH=%s:$PATH\n", c.Kubeconfig(), c.BinDir())
		return nil
	default:
		return errors.New(usage)
	}
}

func printEnv(out io.Writer, c *localcluster.Cluster) {
	fmt.Fprintf(out, "\nPoint kubectl at it (a kubectl of the same version is in %s):\n", filepath.Base(c.BinDir()))
	fmt.Fprintf(out, "  export KUBECONFIG=%s\n  export PATH=%s:$PATH\n  kubectl get nodes\n", c.Kubeconfig(), c.BinDir())
	fmt.Fprintln(out, "or: eval \"$(make -s cluster-env)\"")
}
