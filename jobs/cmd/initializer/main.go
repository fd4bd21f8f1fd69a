// Command initializer is the initializer job, run by a CronJob: it reads the
// outcome of the builds' init Jobs into their Deployments and launches init
// Jobs for the oldest builds to initialize while fewer than
// RUNBOAT_MAX_INITIALIZING run.
//
// Flags: --dry-run prints the plan and writes nothing; --linger DURATION
// keeps reacting to changes until that long after the start. It exits 1 when
// the run could not do its work, 0 when it did or another run was under way.
package main

import (
	"os"

	"runboat.dev/jobs/internal/cli"
	"runboat.dev/shared/jobs/initializer"
)

func main() {
	os.Exit(cli.Main(initializer.Job{}, os.Args[1:]))
}
