// Package localcluster builds and runs the local Kubernetes control plane of
// development and tests: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler built from source, run by kwokctl's binary runtime, with kwok
// simulating nodes and pods (no container runs; the stages in stages.yaml
// decide how pods behave).
package localcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultName is the name of the local cluster.
const DefaultName = "runboat"

// Nodes is the number of fake nodes of the local cluster.
const Nodes = 2

//go:embed stages.yaml
var stages []byte

// kwokctlConfig patches the components kwokctl starts (kwokctl.yaml); it is
// given to kwokctl in one file with the stages.
//
//go:embed kwokctl.yaml
var kwokctlConfig []byte

// Cluster is a local control plane, identified by its name, with its state in
// a cache folder outside the project.
type Cluster struct {
	name        string
	cacheDir    string
	kubeVersion string
	// realNode tells a cluster with a real node beside the fake ones.
	realNode bool
}

// Option is an option of New.
type Option func(*Cluster)

// WithRealNode gives the cluster a real node beside its fake ones: a
// kubelet and containerd that run the pods that select it (see
// RealNodePod). It needs root and a few Debian packages (installed when
// missing), and builds the kubelet, runc and the CNI plugins on first use.
func WithRealNode() Option { return func(c *Cluster) { c.realNode = true } }

// New returns the local cluster named name, with its state under cacheDir
// (see CacheDir for the default).
func New(name, cacheDir string, opts ...Option) (*Cluster, error) {
	v, err := KubeVersion()
	if err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, `/\ `) {
		return nil, fmt.Errorf("invalid cluster name %q", name)
	}
	c := &Cluster{name: name, cacheDir: cacheDir, kubeVersion: v}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// CacheDir is where builds and cluster state are kept: $RUNBOAT_CACHE_DIR,
// or runboat in the user's cache folder ($XDG_CACHE_HOME or ~/.cache).
func CacheDir() (string, error) {
	if dir := os.Getenv("RUNBOAT_CACHE_DIR"); dir != "" {
		return filepath.Abs(dir)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("failed to find a cache folder (set RUNBOAT_CACHE_DIR): %w", err)
	}
	return filepath.Join(dir, "runboat"), nil
}

// Default returns the cluster DefaultName in CacheDir, with a real node
// unless $RUNBOAT_REAL_NODE is "off".
func Default() (*Cluster, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	var opts []Option
	if os.Getenv("RUNBOAT_REAL_NODE") != "off" {
		opts = append(opts, WithRealNode())
	}
	return New(DefaultName, dir, opts...)
}

func (c *Cluster) versionDir() string {
	return filepath.Join(c.cacheDir, "controlplane", c.kubeVersion+"-kwok-"+KwokVersion)
}

func (c *Cluster) buildLog() string { return filepath.Join(c.versionDir(), "build.log") }

func (c *Cluster) stateDir() string { return filepath.Join(c.cacheDir, "clusters", c.name) }

// kwokWorkDir is kwokctl's own work folder, kept apart from ~/.kwok.
func (c *Cluster) kwokWorkDir() string { return filepath.Join(c.cacheDir, "kwok") }

// Kubeconfig is the path of the cluster's own kubeconfig file (never the
// user's ~/.kube/config).
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.stateDir(), "kubeconfig") }

// KubeVersion is the Kubernetes version of the cluster.
func (c *Cluster) KubeVersion() string { return c.kubeVersion }

// BinDir is the folder of the control plane binaries, kubectl included.
func (c *Cluster) BinDir() string { return filepath.Join(c.versionDir(), "bin") }

// Up builds what is missing and starts the cluster, unless it is already
// running. It is safe to call from several processes at once.
func (c *Cluster) Up(ctx context.Context, log io.Writer) error {
	unlock, err := c.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.Ready(ctx); err == nil {
		fmt.Fprintf(log, "The local cluster %q is already running.\n", c.name)
		return nil
	}
	bins, err := c.ensureBinaries(ctx, log)
	if err != nil {
		if t := tail(c.buildLog(), 30); t != "" {
			return fmt.Errorf("%w\nlast lines of the build log:\n%s", err, t)
		}
		return err
	}
	var nodeBins NodeBinaries
	if c.realNode {
		if err := ensureNodePackages(ctx, log); err != nil {
			return err
		}
		if nodeBins, err = c.ensureNodeBinaries(ctx, log); err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		port, err := c.start(ctx, bins, log)
		if err != nil {
			return err
		}
		err = c.waitReady(ctx, 2*time.Minute, c.controlPlaneReady)
		if errors.Is(err, errForeignServer) {
			err = fmt.Errorf("%w (%s)", err, listenersOf(int(port)))
		}
		if err == nil && c.realNode {
			if err := c.startNode(ctx, nodeBins, log); err != nil {
				return fmt.Errorf("failed to start the real node (logs in %s): %w", c.node().path("logs"), err)
			}
			if err := c.waitReady(ctx, 2*time.Minute, c.Ready); err != nil {
				return fmt.Errorf("%w (logs in %s)", err, c.node().path("logs"))
			}
			return nil
		}
		if err == nil || !errors.Is(err, errForeignServer) || attempt == startAttempts {
			return err
		}
		// Another cluster on this machine (another checkout, another run)
		// can take the port between the choice and the API server's start.
		fmt.Fprintf(log, "%v\nStarting the local cluster again, on another port (try %d of %d).\n", err, attempt+1, startAttempts)
	}
}

// startAttempts bounds the starts of Up when another API server answers on
// the port of the cluster's.
const startAttempts = 3

// errForeignServer is the error of a cluster whose API server port answers
// with a certificate that the cluster's own CA did not sign.
var errForeignServer = errors.New("another API server answers on the port of the local cluster")

// isForeignCertificate reports whether err is a TLS verification failure
// against the cluster's CA.
func isForeignCertificate(err error) bool {
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &verify)
}

// start starts the cluster and returns the port of its API server.
func (c *Cluster) start(ctx context.Context, bins Binaries, log io.Writer) (uint32, error) {
	// Whatever is left of an earlier run (stopped processes after a reboot,
	// a half-created cluster) is removed first: the cluster holds nothing
	// worth keeping across restarts.
	if err := c.deleteCluster(ctx, bins, io.Discard); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(c.stateDir(), 0o755); err != nil {
		return 0, fmt.Errorf("failed to create the cluster folder: %w", err)
	}
	logs, err := writeLogs(filepath.Join(c.stateDir(), "logs"))
	if err != nil {
		return 0, err
	}
	configFile := filepath.Join(c.stateDir(), "kwokctl.yaml")
	pki, err := json.Marshal(filepath.Dir(c.pkiPath("ca.crt")))
	if err != nil {
		return 0, fmt.Errorf("failed to write the kwokctl configuration: %w", err)
	}
	config := bytes.ReplaceAll(kwokctlConfig, []byte("$(PKI)"), pki[1:len(pki)-1])
	if err := os.WriteFile(configFile, slices.Concat(config, stages, logs), 0o644); err != nil {
		return 0, fmt.Errorf("failed to write the kwok stages: %w", err)
	}
	port, err := freeAPIServerPort()
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(log, "Starting the local cluster %q (Kubernetes %s)...\n", c.name, c.kubeVersion)
	err = c.kwokctl(ctx, bins, log, "create", "cluster",
		"--name", c.name,
		"--runtime", "binary",
		"--kubeconfig", c.Kubeconfig(),
		"--kube-authorization=true",
		"--kube-apiserver-port", strconv.FormatUint(uint64(port), 10),
		"--config", configFile,
		"--etcd-binary", bins.Etcd,
		"--kube-apiserver-binary", bins.KubeAPIServer,
		"--kube-controller-manager-binary", bins.KubeControllerManager,
		"--kube-scheduler-binary", bins.KubeScheduler,
		"--kwok-controller-binary", bins.Kwok,
		"--wait", "2m",
	)
	if err != nil {
		return 0, fmt.Errorf("failed to create the cluster: %w", err)
	}
	// The fake nodes' addresses are on the loopback (kwok serves their
	// kubelet API on every address), not kwokctl's default of addresses of
	// a documentation range, which may be a real network's: the API server
	// reaches a node at its InternalIP first (kwokctl.yaml), the real
	// node's kubelet too.
	err = c.kwokctl(ctx, bins, log, "scale", "node", "--name", c.name, "--replicas", strconv.Itoa(Nodes), "--param", `.nodeIPs=["127.0.0.1"]`)
	if err != nil {
		return 0, fmt.Errorf("failed to add the fake nodes: %w", err)
	}
	return port, nil
}

// Down stops the cluster and removes its state. It leaves no process of the
// control plane running, and is a no-op when the cluster is not there.
func (c *Cluster) Down(ctx context.Context, log io.Writer) error {
	unlock, err := c.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.deleteCluster(ctx, binariesIn(c.BinDir()), log); err != nil {
		return err
	}
	if err := os.RemoveAll(c.stateDir()); err != nil {
		return fmt.Errorf("failed to remove the cluster folder: %w", err)
	}
	return nil
}

func (c *Cluster) deleteCluster(ctx context.Context, bins Binaries, log io.Writer) error {
	// The real node first, while the API server still answers its kubelet.
	if err := c.stopNode(ctx, log); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.kwokWorkDir(), "clusters", c.name)); err == nil {
		if _, err := os.Stat(bins.Kwokctl); err == nil {
			if err := c.kwokctl(ctx, bins, log, "delete", "cluster", "--name", c.name, "--kubeconfig", c.Kubeconfig()); err != nil {
				return fmt.Errorf("failed to delete the cluster: %w", err)
			}
		}
	}
	// kwokctl stops what it started; anything still running from the
	// cluster's copies of the binaries (a crash half-way through a start)
	// is stopped here.
	left, err := c.Processes()
	if err != nil {
		return err
	}
	for _, pid := range left {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("failed to stop process %d: %w", pid, err)
		}
	}
	if len(left) > 0 {
		fmt.Fprintf(log, "Stopped %d leftover control plane processes.\n", len(left))
	}
	return os.RemoveAll(filepath.Join(c.kwokWorkDir(), "clusters", c.name))
}

// Processes returns the ids of the running processes of the cluster: those
// started from the copies of the binaries kwokctl makes in the cluster's
// folder (not those of the version's own folder: kwokctl and kubectl run
// from there, for every cluster of that version), and those of its real
// node (see nodeProcesses).
func (c *Cluster) Processes() ([]int, error) {
	cp, err := c.controlPlaneProcesses()
	if err != nil {
		return nil, err
	}
	node, err := c.nodeProcesses()
	if err != nil {
		return nil, err
	}
	return slices.Concat(cp, node), nil
}

func (c *Cluster) controlPlaneProcesses() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("failed to list processes: %w", err)
	}
	sep := string(filepath.Separator)
	prefix := filepath.Join(c.kwokWorkDir(), "clusters", c.name) + sep
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		// The command as started: /proc/<pid>/exe resolves the link
		// kwokctl makes in the cluster's folder to the version's binary.
		args, err := nulSeparated(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(args) == 0 || args[0] == "" {
			continue // gone, a zombie, or not ours to read
		}
		if strings.HasPrefix(args[0], prefix) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (c *Cluster) kwokctl(ctx context.Context, bins Binaries, log io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, bins.Kwokctl, args...)
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+c.kwokWorkDir(), "PATH="+c.BinDir()+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = log, log
	// The control plane outlives this process: keep it out of our process
	// group so that a Ctrl-C here does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kwokctl %s: %w", strings.Join(args[:2], " "), err)
	}
	return nil
}

// RESTConfig returns a client configuration for the cluster, as its admin.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("failed to load the kubeconfig of the local cluster: %w", err)
	}
	cfg.UserAgent = "runboat-localcluster"
	return cfg, nil
}

// Ready reports whether the API server answers and the nodes are Ready:
// the fake ones, and the real one if the cluster has it.
func (c *Cluster) Ready(ctx context.Context) error {
	cs, err := c.readyClient()
	if err != nil {
		return err
	}
	if err := c.controlPlaneReady(ctx); err != nil {
		return err
	}
	if c.realNode {
		return c.nodeReady(ctx, cs)
	}
	return nil
}

func (c *Cluster) readyClient() (kubernetes.Interface, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create a client: %w", err)
	}
	return cs, nil
}

// controlPlaneReady reports whether the API server answers and the fake
// nodes are Ready.
func (c *Cluster) controlPlaneReady(ctx context.Context) error {
	cs, err := c.readyClient()
	if err != nil {
		return err
	}
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("the API server is not ready: %w", err)
	}
	// Kwok's: the real node is not one of these.
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
	if err != nil {
		return fmt.Errorf("failed to list nodes: %w", err)
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready < Nodes {
		return fmt.Errorf("%d of %d nodes are ready", ready, Nodes)
	}
	return nil
}

func (c *Cluster) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		if isForeignCertificate(err) {
			// Not a server still starting: waiting would not help.
			return fmt.Errorf("%w: %w", errForeignServer, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the local cluster did not become ready within %s: %w", timeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
