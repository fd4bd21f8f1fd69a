package localcluster

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
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
	"sigs.k8s.io/yaml"
)

// RealNodeLabel is the label (value "true") and the taint key (effect
// NoSchedule) of the real node: a pod lands there only with a node
// selector on the label and a toleration of the taint; every other pod goes
// to the fake nodes.
const RealNodeLabel = "runboat.dev/real-node"

// FakeNodeAnnotation and FakeNodeAnnotationValue mark the nodes kwok
// manages (kwokctl gives them to the fake nodes it makes): a Node a test
// creates needs them to become Ready; without them it is left alone, as the
// real node is.
const (
	FakeNodeAnnotation      = "kwok.x-k8s.io/node"
	FakeNodeAnnotationValue = "fake"
)

// RealNodeName is the name of the cluster's real node.
func (c *Cluster) RealNodeName() string { return c.name + "-real-node" }

// HasRealNode tells whether the cluster runs a real node.
func (c *Cluster) HasRealNode() bool { return c.realNode }

// RealNodePod makes spec run on the real node: a node selector on its label
// and a toleration of its taint.
func RealNodePod(spec *corev1.PodSpec) {
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	spec.NodeSelector[RealNodeLabel] = "true"
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
		Key: RealNodeLabel, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule,
	})
}

// node is the real node of a cluster: containerd and a kubelet, with every
// file, socket, mount and network namespace under its folder, a bridge and
// an iptables chain of its own.
type node struct {
	dir string
	// bridge is the name of the pod network's bridge, subnet its /24 and
	// gateway the host's address on it.
	bridge, subnet, gateway string
	// chain is the iptables nat chain that sends the pods' connections to
	// the API server's Service address to the API server.
	chain string
}

func (c *Cluster) node() node {
	sum := sha256.Sum256([]byte(c.name))
	id := fmt.Sprintf("%x", sum[:4])
	// One /24 of 10.244.0.0/16 by cluster name, so that clusters of other
	// names (a test's own) rarely share a subnet.
	octet := strconv.Itoa(int(sum[4]))
	return node{
		dir:     filepath.Join(c.stateDir(), "node"),
		bridge:  "rb-" + id,
		subnet:  "10.244." + octet + ".0/24",
		gateway: "10.244." + octet + ".1",
		chain:   "RUNBOAT-" + strings.ToUpper(id),
	}
}

func (n node) path(elem ...string) string { return filepath.Join(append([]string{n.dir}, elem...)...) }
func (n node) socket() string             { return n.path("containerd", "containerd.sock") }

// startNode starts the real node: the pod network, containerd with the
// node's images, and the kubelet, registered with the cluster's API server.
// The caller waits for the node to be Ready.
func (c *Cluster) startNode(ctx context.Context, bins NodeBinaries, log io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("the real node needs root (containerd, mounts, network): run as root, or set RUNBOAT_REAL_NODE=off for a cluster of fake nodes only")
	}
	n := c.node()
	fmt.Fprintf(log, "Starting the real node %s (containerd, kubelet %s)...\n", c.RealNodeName(), c.kubeVersion)
	for _, d := range []string{"containerd", "kubelet", "cni", "logs", "pod-logs", "images"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return fmt.Errorf("failed to create the node's folder: %w", err)
		}
	}
	if err := c.startNetwork(ctx, n); err != nil {
		return err
	}
	if err := n.writeContainerdConfig(bins); err != nil {
		return err
	}
	if err := startDaemon(n.path("logs", "containerd.log"), "containerd", "--config", n.path("containerd.toml")); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, "containerd", func() error {
		return exec.CommandContext(ctx, "ctr", "--address", n.socket(), "version").Run()
	}); err != nil {
		return err
	}
	tars, err := buildImages(ctx, n.path("images"))
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(tars)) {
		if err := importImage(ctx, n.socket(), tars[name], name); err != nil {
			return err
		}
	}
	port, err := freePort(n.gateway)
	if err != nil {
		return err
	}
	if err := n.writeKubeletConfig(c, port); err != nil {
		return err
	}
	return startDaemon(n.path("logs", "kubelet.log"), bins.Kubelet,
		"--config", n.path("kubelet.yaml"),
		"--kubeconfig", c.Kubeconfig(),
		"--root-dir", n.path("kubelet"),
		"--hostname-override", c.RealNodeName(),
		"--node-ip", n.gateway,
		"--node-labels", RealNodeLabel+"=true",
	)
}

// startNetwork makes the pod network's bridge, with the host's address on
// it (the kubelet's address too), and the iptables chain that stands for
// kube-proxy for the one Service pods need: the API server's, the
// in-cluster address of client-go.
func (c *Cluster) startNetwork(ctx context.Context, n node) error {
	prefix := strings.Split(n.subnet, "/")[1]
	for _, args := range [][]string{
		{"link", "add", n.bridge, "type", "bridge"},
		{"addr", "add", n.gateway + "/" + prefix, "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	} {
		if err := command(ctx, "ip", args...); err != nil {
			return fmt.Errorf("failed to set up the pod network: %w", err)
		}
	}
	svcIP, svcPort, apiPort, err := c.apiServerService(ctx)
	if err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-t", "nat", "-N", n.chain},
		{"-t", "nat", "-A", n.chain, "-d", svcIP + "/32", "-p", "tcp", "--dport", svcPort,
			"-j", "DNAT", "--to-destination", n.gateway + ":" + apiPort},
		{"-t", "nat", "-A", "PREROUTING", "-i", n.bridge, "-j", n.chain},
	} {
		if err := command(ctx, "iptables", args...); err != nil {
			return fmt.Errorf("failed to route the pods to the API server: %w", err)
		}
	}
	return nil
}

// apiServerService returns the address and port of the Service
// default/kubernetes, and the port the API server listens on.
func (c *Cluster) apiServerService(ctx context.Context) (ip, port, apiPort string, err error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return "", "", "", err
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return "", "", "", fmt.Errorf("failed to read the API server's address: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", "", "", fmt.Errorf("failed to create a client: %w", err)
	}
	svc, err := cs.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return "", "", "", fmt.Errorf("failed to read the API server's Service: %w", err)
	}
	if len(svc.Spec.Ports) == 0 || svc.Spec.ClusterIP == "" {
		return "", "", "", errors.New("the API server's Service has no address")
	}
	return svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)), u.Port(), nil
}

// writeContainerdConfig writes containerd's configuration: every folder
// and socket under the node's, runc as the runtime, and the CRI settings
// this kind of machine (cgroup v1 in hybrid mode, no AppArmor, a container
// of its own) needs, without which every sandbox fails in runc.
func (n node) writeContainerdConfig(bins NodeBinaries) error {
	q := strconv.Quote
	config := `version = 2
root = ` + q(n.path("containerd", "root")) + `
state = ` + q(n.path("containerd", "state")) + `
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ` + q(n.socket()) + `

[ttrpc]
  address = ` + q(n.socket()+".ttrpc") + `

[plugins."io.containerd.internal.v1.opt"]
  path = ` + q(n.path("containerd", "opt")) + `

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ` + q(PauseImage) + `
  restrict_oom_score_adj = true
  disable_apparmor = true
  disable_cgroup = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ` + q(bins.CNIDir) + `
    conf_dir = ` + q(n.path("cni")) + `

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = ` + q(bins.Runc) + `
        Root = ` + q(n.path("runc")) + `
`
	if err := os.WriteFile(n.path("containerd.toml"), []byte(config), 0o644); err != nil {
		return fmt.Errorf("failed to write containerd's configuration: %w", err)
	}
	cni := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "runboat-" + n.bridge,
		"plugins": []any{
			map[string]any{
				"type":      "bridge",
				"bridge":    n.bridge,
				"isGateway": true,
				// The default route through the host: the API server.
				"isDefaultGateway": true,
				"ipMasq":           false,
				"hairpinMode":      true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.subnet, "gateway": n.gateway}}},
					"dataDir": n.path("cni-ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(cni, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to write the CNI configuration: %w", err)
	}
	if err := os.WriteFile(n.path("cni", "10-runboat.conflist"), data, 0o644); err != nil {
		return fmt.Errorf("failed to write the CNI configuration: %w", err)
	}
	return nil
}

// writeKubeletConfig writes the kubelet's configuration: containerd's
// socket, cgroupfs without QoS cgroups nor node allocatable enforcement
// (containerd runs containers without cgroups here), its API on the pod
// network's gateway, served to the API server's client certificate only,
// and the taint.
func (n node) writeKubeletConfig(c *Cluster, port int) error {
	config := map[string]any{
		"apiVersion":                    "kubelet.config.k8s.io/v1beta1",
		"kind":                          "KubeletConfiguration",
		"address":                       n.gateway,
		"port":                          port,
		"healthzPort":                   0,
		"readOnlyPort":                  0,
		"containerRuntimeEndpoint":      "unix://" + n.socket(),
		"cgroupDriver":                  "cgroupfs",
		"failCgroupV1":                  false,
		"failSwapOn":                    false,
		"cgroupsPerQOS":                 false,
		"enforceNodeAllocatable":        []string{},
		"localStorageCapacityIsolation": false,
		"podLogsDir":                    n.path("pod-logs"),
		"clusterDomain":                 "cluster.local",
		"maxPods":                       50,
		"serializeImagePulls":           false,
		"registerWithTaints":            []corev1.Taint{{Key: RealNodeLabel, Value: "true", Effect: corev1.TaintEffectNoSchedule}},
		"imageGCHighThresholdPercent":   100,
		"imageGCLowThresholdPercent":    99,
		// No iptables chains of its own (KUBE-FIREWALL, the canaries):
		// they would outlive the node.
		"makeIPTablesUtilChains":          false,
		"shutdownGracePeriod":             "0s",
		"shutdownGracePeriodCriticalPods": "0s",
		"authentication": map[string]any{
			"anonymous": map[string]bool{"enabled": false},
			"webhook":   map[string]bool{"enabled": false},
			"x509":      map[string]string{"clientCAFile": c.pkiPath("ca.crt")},
		},
		"authorization": map[string]string{"mode": "AlwaysAllow"},
	}
	data, err := yaml.Marshal(config)
	if err != nil {
		return fmt.Errorf("failed to write the kubelet's configuration: %w", err)
	}
	if err := os.WriteFile(n.path("kubelet.yaml"), data, 0o644); err != nil {
		return fmt.Errorf("failed to write the kubelet's configuration: %w", err)
	}
	return nil
}

// pkiPath is a file of the certificates kwokctl made for the cluster.
func (c *Cluster) pkiPath(name string) string {
	return filepath.Join(c.kwokWorkDir(), "clusters", c.name, "pki", name)
}

// stopNode stops the real node and removes all of it: its processes (the
// kubelet, containerd, the shims and every container), the mounts under
// its folder (containers' root filesystems, volumes, network namespaces,
// whose veths go with them), the bridge, the iptables chain, the kubelet's
// links in /var/log/containers, and the folder. It is a no-op for a
// cluster without one.
func (c *Cluster) stopNode(ctx context.Context, log io.Writer) error {
	n := c.node()
	pids, err := c.nodeProcesses()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("failed to stop process %d of the real node: %w", pid, err)
		}
	}
	if err := waitFor(ctx, 30*time.Second, "the real node's processes to end", func() error {
		for _, pid := range pids {
			if !ended(pid) {
				return fmt.Errorf("process %d still runs", pid)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if len(pids) > 0 {
		fmt.Fprintf(log, "Stopped the %d processes of the real node.\n", len(pids))
	}
	mounts, err := mountsUnder(n.dir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("failed to unmount %s: %w", m, err)
		}
	}
	if err := n.removeNetwork(ctx); err != nil {
		return err
	}
	if err := removeLinksInto("/var/log/containers", n.dir); err != nil {
		return err
	}
	if err := os.RemoveAll(n.dir); err != nil {
		return fmt.Errorf("failed to remove the real node's folder: %w", err)
	}
	return nil
}

func (n node) removeNetwork(ctx context.Context) error {
	if _, err := exec.LookPath("iptables"); err == nil && exec.CommandContext(ctx, "iptables", "-t", "nat", "-S", n.chain).Run() == nil {
		// The jump first: a chain still referenced cannot go.
		for exec.CommandContext(ctx, "iptables", "-t", "nat", "-D", "PREROUTING", "-i", n.bridge, "-j", n.chain).Run() == nil {
		}
		for _, args := range [][]string{{"-t", "nat", "-F", n.chain}, {"-t", "nat", "-X", n.chain}} {
			if err := command(ctx, "iptables", args...); err != nil {
				return fmt.Errorf("failed to remove the real node's iptables chain: %w", err)
			}
		}
	}
	if _, err := net.InterfaceByName(n.bridge); err == nil {
		if err := command(ctx, "ip", "link", "del", n.bridge); err != nil {
			return fmt.Errorf("failed to remove the pod network's bridge: %w", err)
		}
	}
	return nil
}

// NodeLeftovers lists what is left of the cluster's real node on this
// machine: its processes, mounts, bridge and interfaces attached to it, and
// iptables chain. Empty once Down has run.
func (c *Cluster) NodeLeftovers(ctx context.Context) ([]string, error) {
	n := c.node()
	var left []string
	pids, err := c.nodeProcesses()
	if err != nil {
		return nil, err
	}
	for _, pid := range pids {
		left = append(left, "process "+strconv.Itoa(pid))
	}
	mounts, err := mountsUnder(n.dir)
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		left = append(left, "mount "+m)
	}
	if _, err := net.InterfaceByName(n.bridge); err == nil {
		left = append(left, "interface "+n.bridge)
		ports, _ := os.ReadDir(filepath.Join("/sys/class/net", n.bridge, "brif"))
		for _, p := range ports {
			left = append(left, "interface "+p.Name()+" (on the bridge)")
		}
	}
	if exec.CommandContext(ctx, "iptables", "-t", "nat", "-S", n.chain).Run() == nil {
		left = append(left, "iptables chain "+n.chain)
	}
	return left, nil
}

// BridgePorts lists the interfaces attached to the real node's bridge:
// the host's ends of the pods' veths.
func (c *Cluster) BridgePorts() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", c.node().bridge, "brif"))
	if err != nil {
		return nil, fmt.Errorf("failed to list the interfaces of the pod network's bridge: %w", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// nodeDaemons are the programs of a real node; each names the node's
// folder on its command line (a configuration, a socket, a root).
var nodeDaemons = []string{"kubelet", "containerd", "containerd-shim-runc-v2", "runc"}

// nodeProcesses returns the processes of the real node: the kubelet,
// containerd, the shims and runc of its folder, and all their descendants
// (the containers' processes).
func (c *Cluster) nodeProcesses() ([]int, error) {
	dir := c.node().dir + string(filepath.Separator)
	return processTree(func(args []string) bool {
		return slices.Contains(nodeDaemons, filepath.Base(args[0])) &&
			slices.ContainsFunc(args[1:], func(a string) bool { return strings.Contains(a, dir) })
	})
}

// processTree returns the processes whose command line match accepts,
// and their descendants.
func processTree(match func(args []string) bool) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("failed to list processes: %w", err)
	}
	parent := map[int]int{}
	matched := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			parent[pid] = ppid
		}
		if args, err := nulSeparated(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && match(args) {
			matched[pid] = true
		}
	}
	var pids []int
	for pid := range parent {
		for p, seen := pid, 0; p > 1 && seen < 64; p, seen = parent[p], seen+1 {
			if matched[p] {
				pids = append(pids, pid)
				break
			}
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// mountsUnder returns the mount points under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("failed to read the mounts: %w", err)
	}
	defer f.Close() //nolint:errcheck // read only
	prefix := dir + string(filepath.Separator)
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		// The mount point, with spaces and such as octal escapes.
		point := unescapeMount(fields[4])
		if strings.HasPrefix(point, prefix) || point == dir {
			mounts = append(mounts, point)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the mounts: %w", err)
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	return mounts, nil
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeLinksInto removes the symbolic links of dir that point under
// target (the kubelet links each container's log in /var/log/containers).
func removeLinksInto(dir, target string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to list %s: %w", dir, err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if dest, err := os.Readlink(p); err == nil && strings.HasPrefix(dest, target+string(filepath.Separator)) {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("failed to remove the log link %s: %w", p, err)
			}
		}
	}
	return nil
}

// startDaemon starts a process that outlives this one (as kwokctl's
// components do), its output in logPath.
func startDaemon(logPath, name string, args ...string) error {
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("failed to open the log of %s: %w", filepath.Base(name), err)
	}
	defer logFile.Close() //nolint:errcheck // the child has its own descriptor
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Out of our process group: a Ctrl-C here does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", filepath.Base(name), err)
	}
	go func() { _ = cmd.Wait() }() // reaped when it ends, if this process still runs
	return nil
}

// command runs a command, its output in the error if it fails.
func command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// freePort returns a TCP port free on host now.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	return port, nil
}

// waitFor asks ok every 200 ms until it succeeds, for up to timeout.
func waitFor(ctx context.Context, timeout time.Duration, what string, ok func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := ok()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %w)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// nodeReady reports whether the real node is registered and Ready.
func (c *Cluster) nodeReady(ctx context.Context, cs kubernetes.Interface) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, c.RealNodeName(), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the real node: %w", err)
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("the real node is not ready: %s: %s", cond.Reason, cond.Message)
		}
	}
	return errors.New("the real node is not ready yet")
}
