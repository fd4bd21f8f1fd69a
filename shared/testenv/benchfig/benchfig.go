// Package benchfig records the figures of `make bench`: each benchmark that
// measures a figure against a baseline of the same run reports it here, and
// `make bench` prints them at the end, one line each,
//
//	bench: <name> <value> <unit> (<ratio>x <baseline>)
//
// so that they can be compared across commits.
package benchfig

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// FileEnv names the file the figures are appended to; unset, they are
// only logged.
const FileEnv = "RUNBOAT_BENCH_FIGURES"

var mu sync.Mutex

// Report records the figure name: value in unit, ratio times the baseline
// (what the ratio is of, in words without spaces, e.g. "bare-create").
// A ratio of 0 is printed without one.
func Report(tb testing.TB, name string, value float64, unit string, ratio float64, baseline string) {
	tb.Helper()
	line := fmt.Sprintf("bench: %s %.4g %s", name, value, unit)
	if ratio != 0 {
		line += fmt.Sprintf(" (%.3gx %s)", ratio, baseline)
	}
	tb.Log(line)
	path := os.Getenv(FileEnv)
	if path == "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatalf("benchfig: %v", err)
	}
	_, err = fmt.Fprintln(f, line)
	if err := errors.Join(err, f.Close()); err != nil {
		tb.Fatalf("benchfig: %v", err)
	}
}
