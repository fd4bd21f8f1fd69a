package cli

import (
	"testing"

	"runboat.dev/shared/jobs/stopper"
)

func TestMainExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"--help"}, 0},
		{"unknown flag", []string{"--nope"}, 2},
		{"argument", []string{"extra"}, 2},
		{"negative linger", []string{"--linger=-1s"}, 2},
		{"bad linger", []string{"--linger=soon"}, 2},
		// No RUNBOAT_* variable: the configuration is invalid.
		{"no configuration", []string{"--dry-run"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RUNBOAT_REPOS", "")
			if got := Main(stopper.Job{}, tc.args); got != tc.want {
				t.Errorf("Main(%q) = %d, want %d", tc.args, got, tc.want)
			}
		})
	}
}
