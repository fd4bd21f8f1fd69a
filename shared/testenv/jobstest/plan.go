package jobstest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"runboat.dev/shared/jobs/runner"
)

// Short describes one action of a plan in a few words (its kind and its
// build), or returns "" for an action it does not know. Each job's plan
// tests give their own, which knows that job's actions.
type Short func(runner.Action) string

// Summary describes each action of p with short; an action short does not
// know is named by its type.
func Summary(p runner.Plan, short Short) []string {
	out := make([]string, 0, len(p.Actions))
	for _, a := range p.Actions {
		s := short(a)
		if s == "" {
			s = fmt.Sprintf("%T", a)
		}
		out = append(out, s)
	}
	return out
}

// Check fails t when the summary of p is not want, in order.
func Check(t testing.TB, p runner.Plan, short Short, want ...string) {
	t.Helper()
	if got := Summary(p, short); !slices.Equal(got, want) {
		t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// CheckWake fails t when p does not wake minutes after T0; 0 is never.
func CheckWake(t testing.TB, p runner.Plan, minutes int) {
	t.Helper()
	var want time.Time
	if minutes != 0 {
		want = T0.Add(time.Duration(minutes) * time.Minute)
	}
	if !p.Wake.Equal(want) {
		t.Errorf("wake %v, want %v", p.Wake, want)
	}
}
