package localcluster

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// ContainerLogs are the logs kwok gives the containers of the local
// cluster, by container name: no container runs, so these stand for what
// the scripts of the demo kubefiles would print. A container of another
// name has no log: the API server fails to give it (as it does when a
// node cannot serve a log).
var ContainerLogs = map[string][]string{
	"initialize": {InitLogLine, "\x1b[33mwarning\x1b[0m: no code to download on the local cluster", "initialized"},
	"cleanup":    {"cleaning up build (a log of the local cluster)", "cleaned up"},
	"web":        {WebLogLine, "GET / 200"},
}

// Lines of ContainerLogs that tests look for.
const (
	InitLogLine = "initializing build (a log of the local cluster: kwok serves it, no container runs)"
	WebLogLine  = "serving the build on :8080 (a log of the local cluster)"
)

// logTime is the time of every log line: the logs are the same at every
// start.
const logTime = "2026-01-01T00:00:00.000000000Z"

// writeLogs writes the log files of ContainerLogs into dir, in the CRI log
// format kwok reads, and returns the kwok ClusterLogs document that serves
// them.
func writeLogs(dir string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create the logs folder: %w", err)
	}
	type log struct {
		Containers []string `json:"containers,omitempty"`
		LogsFile   string   `json:"logsFile"`
	}
	var logs []log
	for _, name := range slices.Sorted(maps.Keys(ContainerLogs)) {
		file := filepath.Join(dir, name+".log")
		var b strings.Builder
		for _, line := range ContainerLogs[name] {
			fmt.Fprintf(&b, "%s stdout F %s\n", logTime, line)
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("failed to write a log file: %w", err)
		}
		logs = append(logs, log{Containers: []string{name}, LogsFile: file})
	}
	doc, err := yaml.Marshal(map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "ClusterLogs",
		"metadata":   map[string]string{"name": "runboat-logs"},
		"spec":       map[string]any{"logs": logs},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to write the kwok logs: %w", err)
	}
	return append([]byte("---\n"), doc...), nil
}
