//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"runboat.dev/functions/localrun"
	"runboat.dev/shared/testenv/localcluster"
)

// These tests run `make run` as a person does, in a terminal (a
// pseudo-terminal), on the local cluster, and press Ctrl-C: the terminal
// interrupts its foreground process group. A clean stop exits 0, make's
// status included, and leaves none of the processes it started.

const (
	// banner is what localrun prints once everything runs.
	banner = "runboat runs on the local cluster."
	// building is what it prints before it builds the function and the jobs.
	building = "Building the function and the jobs..."
)

func TestCtrlCOfMakeRunExitsZero(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after string // the line after which Ctrl-C is pressed
	}{
		{"once up", banner},
		{"while starting", building},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := makeRunThenInterrupt(t, tc.after)
			if code != 0 {
				t.Errorf("make run exited %d after Ctrl-C, want 0; output:\n%s", code, out)
			}
			for _, want := range []string{"Stopping...", "Stopped."} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "make: ***") {
				t.Errorf("make reports an error:\n%s", out)
			}
			checkNothingLeft(t)
		})
	}
}

// makeRunThenInterrupt starts make run from the project's root in a
// terminal, waits for the line after, types Ctrl-C and returns the terminal's
// output and make's exit code.
func makeRunThenInterrupt(t *testing.T, after string) (string, int) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", localrun.Listen, time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("%s is taken already (is a make run going on?)", localrun.Listen)
	}
	term, tty := openPTY(t)
	cmd := exec.Command("make", "-s", "run")
	cmd.Dir = root
	cmd.Env = makeEnv()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// As a login shell's job: a session of its own, whose controlling
	// terminal is the pseudo-terminal, make in its foreground.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start make run: %v", err)
	}
	_ = tty.Close()
	sid := cmd.Process.Pid
	var werr error // cmd.Wait's, once exited is closed
	exited := make(chan struct{})
	go func() {
		werr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// A test that failed half-way: stop it as Ctrl-C does, then for good.
		select {
		case <-exited:
			return
		default:
		}
		_, _ = term.Write([]byte{3})
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = syscall.Kill(-sid, syscall.SIGKILL)
		}
	})

	var mu sync.Mutex
	var out strings.Builder
	seen := make(chan struct{})
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(term) // until EIO: every end of the terminal closed
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			out.WriteString(strings.TrimRight(sc.Text(), "\r") + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), after) {
				once.Do(func() { close(seen) })
			}
		}
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}

	// The first run builds the function and the jobs: minutes on 2 cores.
	select {
	case <-seen:
	case <-exited:
		t.Fatalf("make run ended (%v) before printing %q:\n%s", werr, after, output())
	case <-time.After(10 * time.Minute):
		t.Fatalf("make run did not print %q within 10 minutes:\n%s", after, output())
	}
	if _, err := term.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatalf("failed to type Ctrl-C: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatalf("make run did not stop within a minute of Ctrl-C:\n%s", output())
	}
	select {
	case <-read:
	case <-time.After(10 * time.Second): // a process left holds the terminal
	}
	code := 0
	if exit := (*exec.ExitError)(nil); errors.As(werr, &exit) {
		code = exit.ExitCode() // -1 when killed by a signal
	} else if werr != nil {
		t.Fatalf("make run: %v", werr)
	}
	return output(), code
}

// openPTY opens a pseudo-terminal: term is the side a terminal emulator
// holds, tty the one its programs use.
func openPTY(t *testing.T) (term, tty *os.File) {
	t.Helper()
	term, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("failed to open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { _ = term.Close() })
	if err := unix.IoctlSetPointerInt(int(term.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("failed to unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(term.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("failed to name the pseudo-terminal: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("failed to open the pseudo-terminal: %v", err)
	}
	return term, tty
}

// makeEnv is the environment of make run: this one, without what the test's
// own make (make test) or module setting (GOWORK=off) put in it.
func makeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOWORK", "MAKEFLAGS", "MFLAGS", "MAKELEVEL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// checkNothingLeft checks that the function no longer listens and that no
// program localrun built still runs.
func checkNothingLeft(t *testing.T) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", localrun.Listen, time.Second); err == nil {
		_ = c.Close()
		t.Errorf("%s still answers after the stop", localrun.Listen)
	}
	cache, err := localcluster.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "localrun", "bin") + string(filepath.Separator)
	procs, err := filepath.Glob("/proc/[0-9]*/exe")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		exe, err := os.Readlink(p)
		if err != nil {
			continue // gone, or not ours to read
		}
		if strings.HasPrefix(exe, bin) {
			t.Errorf("%s still runs (%s)", exe, filepath.Dir(p))
		}
	}
}
