package config

import (
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// Jobs tunes the initializer, the stopper and the undeployer. These settings
// are this project's: the Python runboat has none of them, and their
// defaults keep its behaviour where it had one.
type Jobs struct {
	// MaxStartedAge is RUNBOAT_MAX_STARTED_AGE: the stopper stops the builds
	// started (last scaled up) longer ago than that, whatever the count of
	// started builds. 0, the default, never stops a build for its age.
	MaxStartedAge time.Duration `env:"MAX_STARTED_AGE" envDefault:"0s"`
	// InitStartTimeout is RUNBOAT_INIT_START_TIMEOUT: an init pod that is
	// still not running after that long, unschedulable or with a container
	// waiting on an error (ErrImagePull, ImagePullBackOff, InvalidImageName,
	// CreateContainerConfigError...), fails its build and its Job is deleted.
	InitStartTimeout time.Duration `env:"INIT_START_TIMEOUT" envDefault:"5m"`
	// CleanupAttempts is RUNBOAT_CLEANUP_ATTEMPTS: how many cleanup Jobs are
	// run for a build being undeployed before giving up, leaving the build
	// marked with the reason for a person to look at.
	CleanupAttempts int `env:"CLEANUP_ATTEMPTS" envDefault:"3"`
	// CleanupBackoff is RUNBOAT_CLEANUP_BACKOFF: the wait after a failed
	// cleanup Job before the next attempt, doubled after each further
	// failure (capped at an hour).
	CleanupBackoff time.Duration `env:"CLEANUP_BACKOFF" envDefault:"1m"`
	// OrphanGracePeriod is RUNBOAT_ORPHAN_GRACE_PERIOD: resources labelled
	// with a build whose Deployment does not exist are deleted by the
	// undeployer once older than that (the webhook creates a build's other
	// resources just before its Deployment).
	OrphanGracePeriod time.Duration `env:"ORPHAN_GRACE_PERIOD" envDefault:"10m"`
}

// Validate reports every problem, each naming its variable.
func (j Jobs) Validate() error {
	var errs []error
	for _, c := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"MAX_STARTED_AGE", j.MaxStartedAge, 0},
		{"INIT_START_TIMEOUT", j.InitStartTimeout, time.Second},
		{"CLEANUP_BACKOFF", j.CleanupBackoff, 0},
		{"ORPHAN_GRACE_PERIOD", j.OrphanGracePeriod, time.Minute},
	} {
		if c.v < c.min {
			errs = append(errs, fieldErr(c.name, "must be >= %s, got %s", c.min, c.v))
		}
	}
	if j.CleanupAttempts < 1 {
		errs = append(errs, fieldErr("CLEANUP_ATTEMPTS", "must be >= 1, got %d", j.CleanupAttempts))
	}
	return errors.Join(errs...)
}

// MarshalZerologObject logs the settings.
func (j Jobs) MarshalZerologObject(e *zerolog.Event) {
	e.Dur("max_started_age", j.MaxStartedAge).
		Dur("init_start_timeout", j.InitStartTimeout).
		Int("cleanup_attempts", j.CleanupAttempts).
		Dur("cleanup_backoff", j.CleanupBackoff).
		Dur("orphan_grace_period", j.OrphanGracePeriod)
}
