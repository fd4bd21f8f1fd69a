package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestIdentitySaysWhereItRuns(t *testing.T) {
	id := Identity()
	h, ok := parseIdentity(id)
	if !ok {
		t.Fatalf("parseIdentity(%q) failed", id)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	self, err := thisProcess()
	if err != nil {
		t.Fatal(err)
	}
	if h.host != host || h.pid != os.Getpid() || h.start != self.start || h.table != self.table {
		t.Errorf("parseIdentity(%q) = %+v, want host %s, pid %d, start %d, table %s", id, h, host, os.Getpid(), self.start, self.table)
	}
	if other := Identity(); other == id {
		t.Errorf("two identities of one process are both %q: its runs are not told apart", id)
	}
}

func TestParseIdentityRefusesOthers(t *testing.T) {
	for _, id := range []string{
		"",
		"test",
		"runboat-1a2b3c4d",                 // the format before process ids
		"host-0-123-0a1b2c3d-ffff",         // pid 0
		"host-x-123-0a1b2c3d-ffff",         // pid not a number
		"host-12-start-0a1b2c3d-ffff",      // start not a number
		"host-12-123-0a1b-ffff",            // table too short
		"-12-123-0a1b2c3d",                 // too few parts
		"-12-123-0a1b2c3d-ffff",            // no host
		"my-host-12-123-0a1b2c3d-ffff-zzz", // a part too many after the pid
	} {
		if h, ok := parseIdentity(id); ok {
			t.Errorf("parseIdentity(%q) = %+v, want it refused", id, h)
		}
	}
	h, ok := parseIdentity("my-host-12-123-0a1b2c3d-ffff")
	if !ok || h.host != "my-host" || h.pid != 12 || h.start != 123 || h.table != "0a1b2c3d" {
		t.Errorf(`parseIdentity("my-host-12-123-0a1b2c3d-ffff") = %+v, %v`, h, ok)
	}
}

// identityOf is the identity a process of this machine would have.
func identityOf(t *testing.T, host string, pid int, start uint64) string {
	t.Helper()
	table, err := processTable()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s-%d-%d-%s-0000", host, pid, start, table)
}

// A Lease held by a process of this machine is taken at once when that
// process has ended, and not before.
func TestAcquireTakesTheLeaseOfAnEndedProcess(t *testing.T) {
	ctx := context.Background()
	cs := newClientset()
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	start, running, err := processStart(pid)
	if err != nil || !running {
		t.Fatalf("processStart(%d) = %d, %v, %v", pid, start, running, err)
	}
	held := identityOf(t, "elsewhere", pid, start)
	if _, err := Acquire(ctx, cs, ns, name, held, 15*time.Second, clk); err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(ctx, cs, ns, name, "next", 15*time.Second, clk)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "runs") {
		t.Fatalf("acquire while its holder's process runs: %v, want ErrHeld saying it runs", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: an error by design
	l, err := Acquire(ctx, cs, ns, name, "next", 15*time.Second, clk)
	if err != nil {
		t.Fatalf("acquire the Lease of a killed process: %v", err)
	}
	if !strings.Contains(l.TakenOver, "has ended") || !strings.Contains(l.TakenOver, held) {
		t.Errorf("TakenOver = %q, want it to name the holder and say its process ended", l.TakenOver)
	}
	cur, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := *cur.Spec.HolderIdentity; got != "next" {
		t.Errorf("holder %q after the take-over, want next", got)
	}
}

// A pid that another process has now is not taken for the holder: its
// start time tells them apart.
func TestAcquireTellsAReusedPid(t *testing.T) {
	ctx := context.Background()
	cs := newClientset()
	self, err := thisProcess()
	if err != nil {
		t.Fatal(err)
	}
	held := identityOf(t, "h", self.pid, self.start+1)
	if _, err := Acquire(ctx, cs, ns, name, held, 15*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(ctx, cs, ns, name, "next", 15*time.Second, nil)
	if err != nil {
		t.Fatalf("acquire the Lease of a process whose pid is reused: %v", err)
	}
	if !strings.Contains(l.TakenOver, "another's now") {
		t.Errorf("TakenOver = %q, want it to say the pid is another's", l.TakenOver)
	}
}

// A holder of another process table is known gone only by its pod, when
// that pod has ended.
func TestAcquireLooksAtTheHolderPod(t *testing.T) {
	const other = "runboat-initializer-29000000-abcde-7-4242-00ff00ff-0000"
	for _, tc := range []struct {
		name  string
		pod   *corev1.Pod
		taken bool
	}{
		{"no pod: it runs elsewhere", nil, false},
		{"its pod runs", podIn(corev1.PodRunning), false},
		{"its pod failed", podIn(corev1.PodFailed), true},
		{"its pod succeeded", podIn(corev1.PodSucceeded), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cs := newClientset()
			if tc.pod != nil {
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, tc.pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Acquire(ctx, cs, ns, name, other, 15*time.Second, nil); err != nil {
				t.Fatal(err)
			}
			l, err := Acquire(ctx, cs, ns, name, "next", 15*time.Second, nil)
			if tc.taken {
				if err != nil || !strings.Contains(l.TakenOver, "pod") {
					t.Fatalf("acquire: %v, want the Lease taken over because of the pod", err)
				}
				return
			}
			if !errors.Is(err, ErrHeld) {
				t.Fatalf("acquire: %v, want ErrHeld", err)
			}
		})
	}
}

func podIn(phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "runboat-initializer-29000000-abcde", Namespace: ns},
		Status:     corev1.PodStatus{Phase: phase},
	}
}
