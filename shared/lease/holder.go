package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"runboat.dev/shared/kube"
)

// A holder identity made by Identity says where its process runs, so that a
// run finding the Lease held by a process that has ended (SIGKILLed, OOM
// killed) takes it at once instead of waiting for it to expire:
//
//	<host>-<pid>-<start>-<table>-<random>
//
// host is the host name (the pod name in a cluster); pid and start are the
// process id and its start time in clock ticks since boot (field 22 of
// /proc/<pid>/stat, so that a reused pid is not taken for the holder);
// table names the process table they belong to, a hash of the kernel's
// boot id and the PID namespace: only a run that sees the same table may
// conclude from /proc that the holder is gone. Two Lambda sandboxes or two
// containers with the same host name and pid are told apart by it.
//
// Elsewhere (another pod, another machine), the holder is known gone when
// its host names a pod of the namespace that has ended (phase Succeeded or
// Failed: a CronJob's pod, restartPolicy Never, whose process was killed).
// Otherwise, or when nothing can be told, the Lease is waited for.
type holder struct {
	host  string
	pid   int
	start uint64
	table string
}

// Identity returns a holder identity for this process (see holder): its
// host name, process id, start time and process table, and a random suffix
// that tells apart the runs of one process.
func Identity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "runboat"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	suffix := hex.EncodeToString(b)
	self, err := thisProcess()
	if err != nil {
		// Without /proc, the identity says nothing of the process: a
		// Lease it holds is waited for until it expires.
		return host + "-" + suffix
	}
	return fmt.Sprintf("%s-%d-%d-%s-%s", host, self.pid, self.start, self.table, suffix)
}

// parseIdentity reads an identity made by Identity; ok is false for any
// other (an older format, a test's name).
func parseIdentity(id string) (h holder, ok bool) {
	parts := strings.Split(id, "-")
	if len(parts) < 5 {
		return holder{}, false
	}
	n := len(parts)
	pid, err := strconv.Atoi(parts[n-4])
	if err != nil || pid <= 0 {
		return holder{}, false
	}
	start, err := strconv.ParseUint(parts[n-3], 10, 64)
	if err != nil {
		return holder{}, false
	}
	if len(parts[n-2]) != tableLen {
		return holder{}, false
	}
	host := strings.Join(parts[:n-4], "-")
	if host == "" {
		return holder{}, false
	}
	return holder{host: host, pid: pid, start: start, table: parts[n-2]}, true
}

// tableLen is the length of a process table's name in an identity.
const tableLen = 8

// thisProcess describes the calling process as an identity does: read
// once, as its pid, start time and process table do not change.
var thisProcess = sync.OnceValues(readThisProcess)

func readThisProcess() (holder, error) {
	pid := os.Getpid()
	start, ok, err := processStart(pid)
	if err != nil || !ok {
		return holder{}, fmt.Errorf("failed to read this process's start time: %w", err)
	}
	table, err := processTable()
	if err != nil {
		return holder{}, err
	}
	return holder{pid: pid, start: start, table: table}, nil
}

// processTable names the process table this process sees: a hash of the
// boot id (one per kernel, so per machine, VM or sandbox) and of the PID
// namespace.
func processTable() (string, error) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("failed to read the boot id: %w", err)
	}
	pidns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return "", fmt.Errorf("failed to read the PID namespace: %w", err)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(boot)) + "/" + pidns))
	return hex.EncodeToString(sum[:])[:tableLen], nil
}

// processStart returns the start time of process pid in clock ticks since
// boot; ok is false when no such process runs (a zombie has ended too).
func processStart(pid int) (start uint64, ok bool, err error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("failed to read the state of process %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted are those after its closing parenthesis, from the state
	// (field 3) on.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("unexpected state of process %d: %q", pid, stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return 0, false, fmt.Errorf("unexpected state of process %d: %q", pid, stat)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, false, nil
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("unexpected start time of process %d: %w", pid, err)
	}
	return start, true, nil
}

// holderGone tells whether the process of a holder identity is known to
// have ended (see holder); why says how it is known, or why it could not
// be told.
func holderGone(ctx context.Context, client kube.Interface, ns, id string) (gone bool, why string) {
	h, ok := parseIdentity(id)
	if !ok {
		return false, "not an identity that says where it runs"
	}
	if self, err := thisProcess(); err == nil && self.table == h.table {
		start, running, err := processStart(h.pid)
		switch {
		case err != nil:
			return false, err.Error()
		case !running:
			return true, fmt.Sprintf("its process %d has ended", h.pid)
		case start != h.start:
			return true, fmt.Sprintf("its process %d has ended (the pid is another's now)", h.pid)
		}
		return false, fmt.Sprintf("its process %d runs", h.pid)
	}
	// Listed, not read: the jobs and the function may list pods, not get
	// them.
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", h.host).String(),
	})
	if err != nil {
		return false, fmt.Sprintf("failed to look for its pod: %v", err)
	}
	if len(pods.Items) == 0 {
		return false, "it runs elsewhere than in a pod of the namespace"
	}
	switch phase := pods.Items[0].Status.Phase; phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return true, fmt.Sprintf("its pod %s has ended (%s)", h.host, phase)
	default:
		return false, fmt.Sprintf("its pod %s is %s", h.host, phase)
	}
}
