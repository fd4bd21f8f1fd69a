// Command undeployer is the undeployer job, run by a CronJob: it cleans up
// and deletes the builds being undeployed, undeploys the least recently used
// builds while more than RUNBOAT_MAX_DEPLOYED exist, and deletes what is
// left of builds whose Deployment is gone.
//
// Flags: --dry-run prints the plan and writes nothing; --linger DURATION
// keeps reacting to changes until that long after the start. It exits 1 when
// the run could not do its work, 0 when it did or another run was under way.
package main

import (
	"os"

	"runboat.dev/jobs/internal/cli"
	"runboat.dev/shared/jobs/undeployer"
)

func main() {
	os.Exit(cli.Main(undeployer.Job{}, os.Args[1:]))
}
