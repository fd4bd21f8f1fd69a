package localcluster

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The API server's port is one nothing listens or answers on, in its range.
func TestFreeAPIServerPort(t *testing.T) {
	for range 20 {
		port, err := freeAPIServerPort()
		if err != nil {
			t.Fatal(err)
		}
		if port < apiServerPortLow || port >= apiServerPortHigh {
			t.Fatalf("port %d outside [%d, %d)", port, apiServerPortLow, apiServerPortHigh)
		}
		if answers(int(port)) {
			t.Fatalf("port %d answers", port)
		}
	}
}

// A port listened on answers, and its listener is named by pid and
// command; a port nothing listens on is said to be so.
func TestListenersOf(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if !answers(port) {
		t.Errorf("port %d listened on does not answer", port)
	}
	got := listenersOf(port)
	if want := "pid " + strconv.Itoa(os.Getpid()) + ": " + os.Args[0]; !strings.Contains(got, want) {
		t.Errorf("listenersOf(%d) = %q, want it to name %q", port, got, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if answers(port) {
		t.Errorf("port %d closed still answers", port)
	}
	if got := listenersOf(port); !strings.Contains(got, "no process") {
		t.Errorf("listenersOf(%d) after close = %q, want no process", port, got)
	}
}
