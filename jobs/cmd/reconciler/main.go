// Command reconciler is the reconciler job, run by a CronJob: it compares
// GitHub (the open pull requests and the branches of the repositories that
// have builds, and of RUNBOAT_RECONCILE_REPOS) with the builds, undeploys
// the builds of closed pull requests, deleted branches and repositories or
// branches no rule supports any more, and deploys the heads that have no
// build: lost webhooks are healed.
//
// Flags: --dry-run prints the plan and writes nothing. It exits 1 when the
// run could not do its work (GitHub unreachable or limiting the rate, the
// request budget spent: the builds of the repositories not read are left
// alone), 0 when it did or another run was under way.
package main

import (
	"os"

	"runboat.dev/jobs/internal/cli"
	"runboat.dev/shared/jobs/reconciler"
)

func main() {
	os.Exit(cli.Main(reconciler.Job{}, os.Args[1:]))
}
