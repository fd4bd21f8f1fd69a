package localcluster

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// apiServerPortRange is where the API server's port is chosen: below the
// range kwokctl picks its other ports from (down from 32767), above the
// usual ephemeral ports of outgoing connections.
const apiServerPortLow, apiServerPortHigh = 20000, 30000

// freeAPIServerPort chooses a port for the API server that nothing listens
// on and nothing answers on: kwokctl only checks that it can listen on a
// port, and a server reached through 127.0.0.1 without listening on it
// here (another cluster's, forwarded into this machine) was seen to
// answer on the port kwokctl chose.
func freeAPIServerPort() (uint32, error) {
	for range 200 {
		port := apiServerPortLow + rand.IntN(apiServerPortHigh-apiServerPortLow)
		if answers(port) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("failed to close a port found free: %w", err)
		}
		return uint32(port), nil
	}
	return 0, errors.New("failed to find a free port for the API server")
}

// answers tells whether a connection to port of 127.0.0.1 is accepted.
func answers(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return !errors.Is(err, syscall.ECONNREFUSED) && !isTimeout(err)
	}
	_ = c.Close() // only dialled to see
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// listenersOf describes the processes of this machine listening on port
// (any address): their pids and commands, for an error that says who
// answers where the cluster's API server should.
func listenersOf(port int) string {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st ... inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 32); ok && err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
		_ = f.Close() // read only
	}
	if len(inodes) == 0 {
		return fmt.Sprintf("no process of this machine listens on port %d", port)
	}
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if link, err := os.Readlink(fd); err == nil && inodes[link] {
			pid := strings.Split(fd, "/")[2]
			cmd, _ := nulSeparated(filepath.Join("/proc", pid, "cmdline"))
			found = append(found, fmt.Sprintf("pid %s: %s", pid, strings.Join(cmd, " ")))
			delete(inodes, link)
		}
	}
	if len(found) == 0 {
		return fmt.Sprintf("port %d is listened on by no process this one may see", port)
	}
	return "listening on port " + strconv.Itoa(port) + ": " + strings.Join(found, "; ")
}
