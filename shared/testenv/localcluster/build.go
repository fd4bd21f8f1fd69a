package localcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Binaries are the paths of the control plane's executables.
type Binaries struct {
	Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler, Kubectl, Kwok, Kwokctl string
}

func binariesIn(dir string) Binaries {
	p := func(name string) string { return filepath.Join(dir, name) }
	return Binaries{
		Etcd:                  p("etcd"),
		KubeAPIServer:         p("kube-apiserver"),
		KubeControllerManager: p("kube-controller-manager"),
		KubeScheduler:         p("kube-scheduler"),
		Kubectl:               p("kubectl"),
		Kwok:                  p("kwok"),
		Kwokctl:               p("kwokctl"),
	}
}

func (b Binaries) all() []string {
	return []string{b.Etcd, b.KubeAPIServer, b.KubeControllerManager, b.KubeScheduler, b.Kubectl, b.Kwok, b.Kwokctl}
}

// completeMarker is written once every binary of a version is built, so that
// an interrupted build is never taken for a finished one.
const completeMarker = ".complete"

// kubeCommands are the Kubernetes commands built from k8s.io/kubernetes.
var kubeCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"}

// etcdMain is the etcd command: etcd's server module holds its main as a
// package, which a two-line program calls.
const etcdMain = `package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
`

// ensureBinaries returns the control plane binaries of the pinned versions,
// building them from source through the Go module proxy on first use. Build
// output goes to log.
func (c *Cluster) ensureBinaries(ctx context.Context, log io.Writer) (Binaries, error) {
	dir := c.versionDir()
	bins := binariesIn(filepath.Join(dir, "bin"))
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err == nil {
		return bins, nil
	}
	unlock, err := c.buildLock(ctx)
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err == nil {
		return bins, nil // built by another cluster meanwhile
	}
	fmt.Fprintf(log, "Building the control plane (Kubernetes %s, etcd, kwok %s) from source into %s.\n", c.kubeVersion, KwokVersion, dir)
	fmt.Fprintf(log, "The first build takes about 10 to 15 minutes on 2 cores; later runs reuse it. Build log: %s\n", c.buildLog())
	if err := os.MkdirAll(filepath.Join(dir, "src", "etcd"), 0o755); err != nil {
		return Binaries{}, fmt.Errorf("failed to create the build folder: %w", err)
	}
	logFile, err := os.Create(c.buildLog())
	if err != nil {
		return Binaries{}, fmt.Errorf("failed to create the build log: %w", err)
	}
	defer logFile.Close() //nolint:errcheck // written through; a close error loses nothing
	b := builder{dir: filepath.Join(dir, "src"), bin: filepath.Join(dir, "bin"), kube: c.kubeVersion, log: logFile}
	err = runSteps(ctx, log, c.buildLog(), []buildStep{
		{"prepare the build module", b.prepare, true},
		{"build the Kubernetes commands", b.buildKube, false},
		{"build etcd", b.buildEtcd, false},
		{"install kwok and kwokctl", b.installKwok, true},
	})
	if err != nil {
		return Binaries{}, err
	}
	for _, p := range bins.all() {
		if _, err := os.Stat(p); err != nil {
			return Binaries{}, fmt.Errorf("failed to find a built binary: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, completeMarker), nil, 0o644); err != nil {
		return Binaries{}, fmt.Errorf("failed to mark the build complete: %w", err)
	}
	return bins, nil
}

// buildStep is one step of a build.
type buildStep struct {
	what string
	run  func(context.Context) error
	// download tells a step that fetches modules: a download from the
	// module proxy can stall, so each try is bounded and retried.
	download bool
}

// runSteps runs steps in order, saying each on log; buildLog names the
// file of their output in errors.
func runSteps(ctx context.Context, log io.Writer, buildLog string, steps []buildStep) error {
	for _, step := range steps {
		fmt.Fprintf(log, "  %s...\n", step.what)
		tries := 1
		if step.download {
			tries = downloadTries
		}
		var err error
		for try := 1; try <= tries; try++ {
			if err = runBounded(ctx, step.run, step.download); err == nil || ctx.Err() != nil {
				break
			}
			fmt.Fprintf(log, "  %s failed (try %d of %d): %v\n", step.what, try, tries, err)
		}
		if err != nil {
			return fmt.Errorf("failed to %s (see %s): %w", step.what, buildLog, err)
		}
	}
	return nil
}

// downloadTries and downloadTimeout bound the steps that fetch modules.
const (
	downloadTries   = 3
	downloadTimeout = 15 * time.Minute
)

// runBounded runs a step, within downloadTimeout if it downloads.
func runBounded(ctx context.Context, step func(context.Context) error, download bool) error {
	if !download {
		return step(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	return step(ctx)
}

// builder builds the control plane in its own Go module, outside the
// project's modules, so that none of this reaches the project's go.mod.
type builder struct {
	dir, bin, kube string
	log            io.Writer
	// env is added to the go command's environment, after the defaults
	// (CGO_ENABLED=0, GOBIN=bin), which it can override.
	env []string
}

// stagingRE matches the replace lines of k8s.io/kubernetes' go.mod that point
// its staging modules at folders of its own repository.
var stagingRE = regexp.MustCompile(`(?m)^\s*(k8s\.io/[A-Za-z0-9._/-]+)\s+=>\s+\./staging/`)

func (b builder) prepare(ctx context.Context) error {
	out, err := b.goOutput(ctx, "mod", "download", "-json", "k8s.io/kubernetes@"+b.kube)
	if err != nil {
		return err
	}
	var mod struct{ GoMod string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return fmt.Errorf("failed to read go mod download output: %w", err)
	}
	upstream, err := os.ReadFile(mod.GoMod)
	if err != nil {
		return fmt.Errorf("failed to read the go.mod of k8s.io/kubernetes: %w", err)
	}
	// Every staging module is published as its own module v0.X.Y.
	staging := "v0." + strings.TrimPrefix(b.kube, "v1.")
	var gomod bytes.Buffer
	fmt.Fprintf(&gomod, "module runboat.dev/localcluster/build\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\n", b.kube)
	for _, m := range stagingRE.FindAllSubmatch(upstream, -1) {
		fmt.Fprintf(&gomod, "replace %s => %s %s\n", m[1], m[1], staging)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "go.mod"), gomod.Bytes(), 0o644); err != nil {
		return fmt.Errorf("failed to write go.mod: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "etcd", "main.go"), []byte(etcdMain), 0o644); err != nil {
		return fmt.Errorf("failed to write the etcd main: %w", err)
	}
	args := []string{"get"}
	for _, cmd := range kubeCommands {
		args = append(args, "k8s.io/kubernetes/cmd/"+cmd+"@"+b.kube)
	}
	if err := b.goRun(ctx, args...); err != nil {
		return err
	}
	// etcd: the server at the version Kubernetes itself requires.
	etcd, err := b.goOutput(ctx, "list", "-m", "-f", "{{.Version}}", "go.etcd.io/etcd/server/v3")
	if err != nil {
		return err
	}
	return b.goRun(ctx, "get", "go.etcd.io/etcd/server/v3/etcdmain@"+strings.TrimSpace(string(etcd)))
}

func (b builder) buildKube(ctx context.Context) error {
	return b.buildKubeCommands(ctx, kubeCommands...)
}

// buildKubeCommands builds commands of k8s.io/kubernetes (cmd/NAME) into
// the bin folder, stamped with the version.
func (b builder) buildKubeCommands(ctx context.Context, cmds ...string) error {
	minor := strings.SplitN(strings.TrimPrefix(b.kube, "v1."), ".", 2)[0]
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", "k8s.io/component-base/version.gitVersion=" + b.kube,
		"-X", "k8s.io/component-base/version.gitMajor=1",
		"-X", "k8s.io/component-base/version.gitMinor=" + minor,
		"-X", "k8s.io/component-base/version.gitTreeState=clean",
	}, " ")
	args := []string{"build", "-ldflags", ldflags, "-o", b.bin + string(filepath.Separator)}
	for _, cmd := range cmds {
		args = append(args, "k8s.io/kubernetes/cmd/"+cmd)
	}
	return b.goRun(ctx, args...)
}

func (b builder) buildEtcd(ctx context.Context) error {
	return b.goRun(ctx, "build", "-ldflags", "-s -w", "-o", filepath.Join(b.bin, "etcd"), "./etcd")
}

func (b builder) installKwok(ctx context.Context) error {
	return b.goRun(ctx, "install", "sigs.k8s.io/kwok/cmd/kwok@"+KwokVersion, "sigs.k8s.io/kwok/cmd/kwokctl@"+KwokVersion)
}

func (b builder) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.dir
	cmd.Env = append(os.Environ(),
		"GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOBIN="+b.bin)
	cmd.Env = append(cmd.Env, b.env...)
	return cmd
}

func (b builder) goRun(ctx context.Context, args ...string) error {
	cmd := b.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	fmt.Fprintf(b.log, "$ go %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", args[0], err)
	}
	return nil
}

func (b builder) goOutput(ctx context.Context, args ...string) ([]byte, error) {
	cmd := b.command(ctx, args...)
	cmd.Stderr = b.log
	fmt.Fprintf(b.log, "$ go %s\n", strings.Join(args, " "))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w", args[0], err)
	}
	return out, nil
}

// tail returns the last n lines of a file, for error messages; "" if the
// file cannot be read.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
