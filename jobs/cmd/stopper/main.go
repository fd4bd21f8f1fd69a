// Command stopper is the stopper job, run by a CronJob: it stops the least
// recently started builds while more than RUNBOAT_MAX_STARTED run, and those
// started longer ago than RUNBOAT_MAX_STARTED_AGE.
//
// Flags: --dry-run prints the plan and writes nothing; --linger DURATION
// keeps reacting to changes until that long after the start. It exits 1 when
// the run could not do its work, 0 when it did or another run was under way.
package main

import (
	"os"

	"runboat.dev/jobs/internal/cli"
	"runboat.dev/shared/jobs/stopper"
)

func main() {
	os.Exit(cli.Main(stopper.Job{}, os.Args[1:]))
}
