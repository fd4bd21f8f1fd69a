package reconciler

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
)

// Why a build is undeployed: the notes of its Events ("reconciled: ...").
const (
	WhyPRClosed      = "reconciled: pull request closed on GitHub"
	WhyBranchDeleted = "reconciled: branch deleted on GitHub"
	WhyUnsupported   = "reconciled: repository or branch not supported by RUNBOAT_REPOS any more"
	whyRetargeted    = "reconciled: pull request retargeted to %s on GitHub"
)

// Read is what a pass read of GitHub.
type Read struct {
	// Repos are the repositories read, by owner/name (lower case).
	Repos map[string]github.Repository
	// Previous are the repositories as the previous run read them (from
	// the cache of the conditional requests), by owner/name; a repository
	// missing was not read before.
	Previous map[string]github.Repository
	// Unread are the repositories that could not be read, with why.
	Unread map[string]error
}

// Settings are what the plan follows.
type Settings struct {
	Builds     config.Builds
	Quotas     config.Quotas
	Reconciler config.Reconciler
}

// Repos returns the repositories a pass reads: those of the builds that a
// rule supports, and those of RUNBOAT_RECONCILE_REPOS, sorted.
func Repos(builds []*runner.Build, s Settings) []string {
	set := map[string]bool{}
	for _, r := range s.Reconciler.Repos {
		set[strings.ToLower(r)] = true
	}
	for _, b := range builds {
		if b.Status != model.StatusUndeploying && s.Builds.Supported(b.Ref.Repo, b.Ref.TargetBranch) {
			set[b.Ref.Repo] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Plan plans a pass of the reconciler, without reading or writing anything.
//
// With RUNBOAT_RECONCILE_UNDEPLOY, it undeploys the builds no rule supports
// any more, and, of the repositories read, the builds of pull requests not
// open (or open on another base branch) and of branches that do not exist.
//
// With RUNBOAT_RECONCILE_DEPLOY, it deploys the head commit of each
// supported branch and open pull request of the repositories read that has
// no build of it, when that head is new since the previous run (or the
// repository was not read before): a head whose build the undeployer
// evicted for the quota is not brought back. At most RUNBOAT_MAX_DEPLOYED
// builds are deployed by one pass; the others come at the next.
//
// The builds of repositories that could not be read are left alone; the
// pass then fails, saying why.
func Plan(builds []*runner.Build, read Read, s Settings) []runner.Action {
	var out []runner.Action
	type target struct {
		repo   string
		branch string
		pr     int
	}
	// commits has the builds of each target, undeploying ones included: a
	// head that has one is not deployed again.
	commits := map[target]map[string]bool{}
	for _, b := range builds {
		t := target{b.Ref.Repo, b.Ref.TargetBranch, b.Ref.PR}
		if commits[t] == nil {
			commits[t] = map[string]bool{}
		}
		commits[t][b.Ref.Commit] = true
		if b.Status == model.StatusUndeploying || !s.Reconciler.Undeploy {
			continue
		}
		if !s.Builds.Supported(b.Ref.Repo, b.Ref.TargetBranch) {
			out = append(out, &undeploy{b: b, why: WhyUnsupported})
			continue
		}
		gh, ok := read.Repos[b.Ref.Repo]
		if !ok {
			continue // not read: left alone
		}
		if b.Ref.PR != 0 {
			pull, open := gh.Pulls[b.Ref.PR]
			switch {
			case !open:
				out = append(out, &undeploy{b: b, why: WhyPRClosed})
			case pull.Base != b.Ref.TargetBranch:
				out = append(out, &undeploy{b: b, why: fmt.Sprintf(whyRetargeted, pull.Base)})
			}
			continue
		}
		if _, exists := gh.Branches[b.Ref.TargetBranch]; !exists {
			out = append(out, &undeploy{b: b, why: WhyBranchDeleted})
		}
	}
	if s.Reconciler.Deploy {
		var deploys []runner.Action
		for _, repo := range slices.Sorted(maps.Keys(read.Repos)) {
			gh := read.Repos[repo]
			prev, seen := read.Previous[repo]
			for _, branch := range slices.Sorted(maps.Keys(gh.Branches)) {
				sha := gh.Branches[branch]
				if !s.Builds.Supported(repo, branch) || commits[target{repo, branch, 0}][sha] {
					continue
				}
				if seen && prev.Branches[branch] == sha {
					continue // known head without a build: evicted
				}
				deploys = append(deploys, newDeploy(repo, branch, 0, sha, "reconciled: branch head without a build"))
			}
			for _, n := range slices.Sorted(maps.Keys(gh.Pulls)) {
				p := gh.Pulls[n]
				if !s.Builds.Supported(repo, p.Base) || commits[target{repo, p.Base, n}][p.Head] {
					continue
				}
				if old, ok := prev.Pulls[n]; seen && ok && old.Head == p.Head && old.Base == p.Base {
					continue
				}
				deploys = append(deploys, newDeploy(repo, p.Base, n, p.Head, "reconciled: pull request head without a build"))
			}
		}
		if limit := s.Quotas.MaxDeployed; len(deploys) > limit {
			deploys = append(deploys[:limit], &deferred{n: len(deploys) - limit, limit: limit})
		}
		out = append(out, deploys...)
	}
	if len(read.Unread) > 0 {
		out = append(out, &unread{repos: read.Unread})
	}
	return out
}

// newDeploy makes the deploy of a head, or, for a head that is not a valid
// build reference, an action that fails saying so.
func newDeploy(repo, branch string, pr int, sha, why string) runner.Action {
	ref, err := model.NewRef(repo, branch, pr, sha)
	if err != nil {
		return &invalid{what: fmt.Sprintf("%s %s pr %d commit %q", repo, branch, pr, sha), err: err}
	}
	return &deployHead{ref: ref, why: why}
}

// sortedRepos are the repositories of m, sorted.
func sortedRepos(m map[string]error) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Compare(a, b) })
}
