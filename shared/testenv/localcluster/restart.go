package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// RestartAPIServer kills the cluster's kube-apiserver, waits down for
// that long, and starts it again as it ran (same command line, folder,
// environment and log file), then waits until it answers and the nodes are
// Ready. etcd, the controllers and kwok keep running, as they do when an
// API server of a real control plane restarts. Clients see connections
// refused meanwhile, their watches end and must be made again.
func (c *Cluster) RestartAPIServer(ctx context.Context, down time.Duration) error {
	pid, err := c.apiServerPID()
	if err != nil {
		return err
	}
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	args, err := nulSeparated(filepath.Join(proc, "cmdline"))
	if err != nil {
		return err
	}
	env, err := nulSeparated(filepath.Join(proc, "environ"))
	if err != nil {
		return err
	}
	dir, err := os.Readlink(filepath.Join(proc, "cwd"))
	if err != nil {
		return fmt.Errorf("failed to read the API server's folder: %w", err)
	}
	logPath, err := os.Readlink(filepath.Join(proc, "fd", "2"))
	if err != nil {
		return fmt.Errorf("failed to read the API server's log file: %w", err)
	}
	// Killed, as by a crash or an OOM kill: a graceful stop waits for the
	// requests in flight, up to a minute.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("failed to stop the API server: %w", err)
	}
	// Gone, or a zombie left for its parent to reap (kwokctl started it
	// and exited): either way it no longer serves.
	for !ended(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API server did not stop: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("failed to open the API server's log file: %w", err)
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// It outlives this process, as kwokctl's components do.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start the API server again: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reaped when it ends, if this process still runs
	// kwokctl stops the components by their pid files.
	if err := os.WriteFile(c.apiServerPIDFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return fmt.Errorf("failed to record the API server's new pid: %w", err)
	}
	return c.waitReady(ctx, 2*time.Minute, c.Ready)
}

func ended(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	state, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return err != nil || bytes.Contains(state, []byte(") Z "))
}

// apiServerPID is the process id of the cluster's kube-apiserver, from
// the pid file kwokctl keeps.
func (c *Cluster) apiServerPID() (int, error) {
	b, err := os.ReadFile(c.apiServerPIDFile())
	if err != nil {
		return 0, fmt.Errorf("no kube-apiserver recorded for the cluster %q: %w", c.name, err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || ended(pid) {
		return 0, fmt.Errorf("no kube-apiserver runs for the cluster %q (pid file %q)", c.name, b)
	}
	return pid, nil
}

func (c *Cluster) apiServerPIDFile() string {
	return filepath.Join(c.kwokWorkDir(), "clusters", c.name, "pids", "kube-apiserver.pid")
}

func nulSeparated(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	var out []string
	for _, f := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
		out = append(out, string(f))
	}
	return out, nil
}
