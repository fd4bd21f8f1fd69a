package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The versions of what the real node runs besides the kubelet (which is of
// the control plane's version).
const (
	// RuncVersion is the OCI runtime of the node's containerd, built with
	// seccomp (the CRI's default seccomp profile needs it).
	RuncVersion = "v1.3.0"
	// CNIPluginsVersion is the version of the CNI reference plugins of the
	// pod network.
	CNIPluginsVersion = "v1.9.1"
)

// cniPlugins are the CNI plugins the node uses: its network (bridge,
// host-local addresses, portmap for host ports) and the loopback that
// containerd sets up in every pod.
var cniPlugins = []string{"main/bridge", "ipam/host-local", "main/loopback", "meta/portmap"}

// NodeBinaries are the paths of the real node's executables built from
// source (containerd is Debian's).
type NodeBinaries struct {
	Kubelet, Runc string
	// CNIDir holds the CNI plugins.
	CNIDir string
}

func nodeBinariesIn(bin string) NodeBinaries {
	return NodeBinaries{
		Kubelet: filepath.Join(bin, "kubelet"),
		Runc:    filepath.Join(bin, "runc"),
		CNIDir:  filepath.Join(bin, "cni"),
	}
}

func (b NodeBinaries) all() []string {
	out := []string{b.Kubelet, b.Runc}
	for _, p := range cniPlugins {
		out = append(out, filepath.Join(b.CNIDir, filepath.Base(p)))
	}
	return out
}

// nodeMarker is written once the node's binaries of these versions are
// built.
func nodeMarker() string {
	return ".node-complete-runc-" + RuncVersion + "-cni-" + CNIPluginsVersion
}

// nodePackages are the Debian packages the real node needs, by a command
// (or, for a library, a check) that tells they are there.
var nodePackages = []struct {
	pkg   string
	check []string
}{
	{"containerd", []string{"containerd", "--version"}},
	{"iptables", []string{"iptables", "--version"}},
	{"iproute2", []string{"ip", "-V"}},
	{"gcc", []string{"gcc", "--version"}},
	{"pkg-config", []string{"pkg-config", "--version"}},
	// runc's seccomp support links libseccomp.
	{"libseccomp-dev", []string{"pkg-config", "--exists", "libseccomp"}},
}

// ensureNodePackages installs the Debian packages of nodePackages that are
// missing (as root, with apt-get), or says which to install.
func ensureNodePackages(ctx context.Context, log io.Writer) error {
	var missing []string
	for _, p := range nodePackages {
		if exec.CommandContext(ctx, p.check[0], p.check[1:]...).Run() != nil {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return fmt.Errorf("the real node needs the Debian packages %s: install them (apt-get install %s), or set RUNBOAT_REAL_NODE=off for a cluster of fake nodes only",
			strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	fmt.Fprintf(log, "Installing the Debian packages of the real node: %s.\n", strings.Join(missing, " "))
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("failed to apt-get %s: %w\n%s", args[0], err, out)
		}
	}
	return nil
}

// ensureNodeBinaries returns the real node's binaries, building them on
// first use in the control plane's build module (the kubelet of the same
// version) and from the Go module proxy (runc, the CNI plugins).
func (c *Cluster) ensureNodeBinaries(ctx context.Context, log io.Writer) (NodeBinaries, error) {
	dir := c.versionDir()
	bins := nodeBinariesIn(filepath.Join(dir, "bin"))
	if _, err := os.Stat(filepath.Join(dir, nodeMarker())); err == nil {
		return bins, nil
	}
	unlock, err := c.buildLock(ctx)
	if err != nil {
		return NodeBinaries{}, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, nodeMarker())); err == nil {
		return bins, nil
	}
	logPath := filepath.Join(dir, "build-node.log")
	fmt.Fprintf(log, "Building the real node (kubelet %s, runc %s, CNI plugins %s) into %s.\n", c.kubeVersion, RuncVersion, CNIPluginsVersion, dir)
	fmt.Fprintf(log, "The first build takes about 6 minutes on 2 cores; later runs reuse it. Build log: %s\n", logPath)
	logFile, err := os.Create(logPath)
	if err != nil {
		return NodeBinaries{}, fmt.Errorf("failed to create the build log: %w", err)
	}
	defer logFile.Close() //nolint:errcheck // written through; a close error loses nothing
	b := builder{dir: filepath.Join(dir, "src"), bin: filepath.Join(dir, "bin"), kube: c.kubeVersion, log: logFile}
	err = runSteps(ctx, log, logPath, []buildStep{
		{"install runc", b.installRunc, true},
		{"install the CNI plugins", b.installCNI, true},
		{"prepare the kubelet build", b.prepareKubelet, true},
		{"build the kubelet", func(ctx context.Context) error { return b.buildKubeCommands(ctx, "kubelet") }, false},
	})
	if err != nil {
		if t := tail(logPath, 30); t != "" {
			return NodeBinaries{}, fmt.Errorf("%w\nlast lines of the build log:\n%s", err, t)
		}
		return NodeBinaries{}, err
	}
	for _, p := range bins.all() {
		if _, err := os.Stat(p); err != nil {
			return NodeBinaries{}, fmt.Errorf("failed to find a built binary: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, nodeMarker()), nil, 0o644); err != nil {
		return NodeBinaries{}, fmt.Errorf("failed to mark the node build complete: %w", err)
	}
	return bins, nil
}

func (b builder) installRunc(ctx context.Context) error {
	// cgo, for libseccomp.
	b.env = []string{"CGO_ENABLED=1"}
	return b.goRun(ctx, "install", "-tags", "seccomp", "-ldflags", "-s -w", "github.com/opencontainers/runc@"+RuncVersion)
}

func (b builder) installCNI(ctx context.Context) error {
	b.env = []string{"GOBIN=" + filepath.Join(b.bin, "cni")}
	args := []string{"install", "-ldflags", "-s -w"}
	for _, p := range cniPlugins {
		args = append(args, "github.com/containernetworking/plugins/plugins/"+p+"@"+CNIPluginsVersion)
	}
	return b.goRun(ctx, args...)
}

// prepareKubelet adds what the kubelet needs to the build module that
// prepare made.
func (b builder) prepareKubelet(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(b.dir, "go.mod")); err != nil {
		return errors.Join(errors.New("the control plane's build module is missing"), err)
	}
	return b.goRun(ctx, "get", "k8s.io/kubernetes/cmd/kubelet@"+b.kube)
}
