package config

import (
	"strings"
	"testing"
	"time"
)

type jobsOnly struct {
	Jobs
}

func TestJobsDefaults(t *testing.T) {
	var cfg jobsOnly
	if err := Load(nil, &cfg); err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Jobs{
		MaxStartedAge:     0,
		InitStartTimeout:  5 * time.Minute,
		CleanupAttempts:   3,
		CleanupBackoff:    time.Minute,
		OrphanGracePeriod: 10 * time.Minute,
	}
	if cfg.Jobs != want {
		t.Errorf("defaults = %+v, want %+v", cfg.Jobs, want)
	}
}

func TestJobsLoad(t *testing.T) {
	var cfg jobsOnly
	err := Load(map[string]string{
		"RUNBOAT_MAX_STARTED_AGE":     "12h",
		"RUNBOAT_INIT_START_TIMEOUT":  "90s",
		"RUNBOAT_CLEANUP_ATTEMPTS":    "5",
		"RUNBOAT_CLEANUP_BACKOFF":     "30s",
		"RUNBOAT_ORPHAN_GRACE_PERIOD": "1h",
	}, &cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Jobs{
		MaxStartedAge:     12 * time.Hour,
		InitStartTimeout:  90 * time.Second,
		CleanupAttempts:   5,
		CleanupBackoff:    30 * time.Second,
		OrphanGracePeriod: time.Hour,
	}
	if cfg.Jobs != want {
		t.Errorf("loaded = %+v, want %+v", cfg.Jobs, want)
	}
}

func TestJobsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    Jobs
		want []string
	}{
		{"smallest values", Jobs{InitStartTimeout: time.Second, CleanupAttempts: 1, OrphanGracePeriod: time.Minute}, nil},
		{
			name: "everything wrong",
			j:    Jobs{MaxStartedAge: -time.Second, InitStartTimeout: 0, CleanupAttempts: 0, CleanupBackoff: -1, OrphanGracePeriod: time.Second},
			want: []string{
				"RUNBOAT_MAX_STARTED_AGE: must be >= 0s, got -1s",
				"RUNBOAT_INIT_START_TIMEOUT: must be >= 1s, got 0s",
				"RUNBOAT_CLEANUP_BACKOFF: must be >= 0s, got -1ns",
				"RUNBOAT_ORPHAN_GRACE_PERIOD: must be >= 1m0s, got 1s",
				"RUNBOAT_CLEANUP_ATTEMPTS: must be >= 1, got 0",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fieldErrors(tc.j.Validate())
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d: %v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				if got[i].Error() != w {
					t.Errorf("problem %d = %q, want %q", i, got[i], w)
				}
			}
		})
	}
}

func TestJobsParseError(t *testing.T) {
	var cfg jobsOnly
	err := Load(map[string]string{"RUNBOAT_INIT_START_TIMEOUT": "soon"}, &cfg)
	if err == nil {
		t.Fatal("Load: no error for an invalid duration")
	}
	got := fieldErrors(err)
	if len(got) != 1 || got[0].Var != "RUNBOAT_INIT_START_TIMEOUT" || !strings.Contains(got[0].Error(), "invalid value") {
		t.Errorf("problems = %v, want one invalid value of RUNBOAT_INIT_START_TIMEOUT", got)
	}
}
