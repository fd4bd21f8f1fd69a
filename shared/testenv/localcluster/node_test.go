package localcluster

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// Each cluster's real node has its own bridge, a valid interface name, and
// its own subnet, whose gateway is in it.
func TestNodeNetworkByName(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range []string{"runboat", "runboat-real-node-down", "x"} {
		c, err := New(name, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		n := c.node()
		if len(n.bridge) > 15 || seen[n.bridge] {
			t.Errorf("cluster %s: bridge %q, want a new name of at most 15 characters", name, n.bridge)
		}
		seen[n.bridge] = true
		// The names of the clusters that run a real node at once (the
		// tests' own beside the default) must not share a subnet.
		if seen[n.subnet] {
			t.Errorf("cluster %s: subnet %s taken by another", name, n.subnet)
		}
		seen[n.subnet] = true
		_, subnet, err := net.ParseCIDR(n.subnet)
		if err != nil || !subnet.Contains(net.ParseIP(n.gateway)) {
			t.Errorf("cluster %s: gateway %s not in subnet %s (%v)", name, n.gateway, n.subnet, err)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:             "/a/b",
		`/a\040b/c`:        "/a b/c",
		`/tab\011x\134y\0`: "/tab\tx\\y\\0",
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// Only the links that point into the node's folder are removed.
func TestRemoveLinksInto(t *testing.T) {
	dir, node := t.TempDir(), t.TempDir()
	ours, theirs := filepath.Join(dir, "ours.log"), filepath.Join(dir, "theirs.log")
	if err := os.Symlink(filepath.Join(node, "pod-logs", "x.log"), ours); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/var/log/pods/other/x.log", theirs); err != nil {
		t.Fatal(err)
	}
	if err := removeLinksInto(dir, node); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(ours); !os.IsNotExist(err) {
		t.Errorf("the link into the node's folder is still there: %v", err)
	}
	if _, err := os.Lstat(theirs); err != nil {
		t.Errorf("another link was removed: %v", err)
	}
	if err := removeLinksInto(filepath.Join(dir, "none"), node); err != nil {
		t.Errorf("a missing folder: %v, want nothing to do", err)
	}
}
