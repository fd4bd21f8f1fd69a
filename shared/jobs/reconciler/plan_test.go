package reconciler

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/runner"
	jt "runboat.dev/shared/testenv/jobstest"
)

// sha is the commit of build number n of jobstest.
func sha(n int) string { return fmt.Sprintf("%040x", n) }

// short names the actions: builds by number, deploys by target and commit
// number.
func short(a runner.Action) string {
	switch a := a.(type) {
	case *undeploy:
		return fmt.Sprintf("undeploy #%d: %s", jt.N(a.b), strings.TrimPrefix(a.why, "reconciled: "))
	case *deployHead:
		var n int
		if _, err := fmt.Sscanf(a.ref.Commit, "%x", &n); err != nil {
			return "deploy " + a.ref.Commit
		}
		if a.ref.PR != 0 {
			return fmt.Sprintf("deploy %s pr %d on %s #%d", a.ref.Repo, a.ref.PR, a.ref.TargetBranch, n)
		}
		return fmt.Sprintf("deploy %s %s #%d", a.ref.Repo, a.ref.TargetBranch, n)
	case *deferred:
		return fmt.Sprintf("defer %d", a.n)
	case *unread:
		return "unread " + strings.Join(sortedRepos(a.repos), ",")
	case *invalid:
		return "invalid " + a.what
	}
	return ""
}

func settings() Settings {
	return Settings{
		Builds: config.Builds{Repos: config.RepoRules{
			config.MustRepoRule("^acme/", `^1[67]\.0$`, config.BuildSettings{Image: "busybox"}),
		}},
		Quotas:     config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 10},
		Reconciler: config.Reconciler{Undeploy: true, Deploy: true, MaxRequests: 100},
	}
}

// acceptance are the builds of the case: PRs 1 to 3 on 16.0,
// branches 16.0 and 17.0.
func acceptance() []*runner.Build {
	return jt.Builds(
		jt.Spec{N: 1, Branch: "16.0", PR: 1},
		jt.Spec{N: 2, Branch: "16.0", PR: 2},
		jt.Spec{N: 3, Branch: "16.0", PR: 3},
		jt.Spec{N: 4, Branch: "16.0"},
		jt.Spec{N: 5, Branch: "17.0"},
	)
}

func repo(branches map[string]int, pulls ...github.Pull) github.Repository {
	r := github.Repository{Repo: "acme/app", Branches: map[string]string{}, Pulls: map[int]github.Pull{}}
	for b, n := range branches {
		r.Branches[b] = sha(n)
	}
	for _, p := range pulls {
		r.Pulls[p.Number] = p
	}
	return r
}

func pull(n int, base string, head int) github.Pull {
	return github.Pull{Number: n, Base: base, Head: sha(head)}
}

func TestPlan(t *testing.T) {
	now := repo(map[string]int{"16.0": 14, "main": 20}, pull(1, "16.0", 1), pull(3, "16.0", 3), pull(4, "16.0", 9))
	for _, tc := range []struct {
		name   string
		builds []*runner.Build
		read   Read
		edit   func(*Settings)
		want   []string
	}{
		{
			name:   "the issue's case: PR 2 closed, 17.0 gone, PR 4 opened, 16.0 moved",
			builds: acceptance(),
			read:   Read{Repos: map[string]github.Repository{"acme/app": now}},
			want: []string{
				"undeploy #2: pull request closed on GitHub",
				"undeploy #5: branch deleted on GitHub",
				"deploy acme/app 16.0 #14",
				"deploy acme/app pr 4 on 16.0 #9",
			},
		},
		{
			name:   "GitHub as the builds: nothing",
			builds: acceptance(),
			read: Read{Repos: map[string]github.Repository{"acme/app": repo(map[string]int{"16.0": 4, "17.0": 5},
				pull(1, "16.0", 1), pull(2, "16.0", 2), pull(3, "16.0", 3))}},
		},
		{
			name:   "an unread repository is left alone, and the pass fails",
			builds: acceptance(),
			read:   Read{Unread: map[string]error{"acme/app": errors.New("502")}},
			want:   []string{"unread acme/app"},
		},
		{
			name:   "undeploying off: only deploys",
			builds: acceptance(),
			read:   Read{Repos: map[string]github.Repository{"acme/app": now}},
			edit:   func(s *Settings) { s.Reconciler.Undeploy = false },
			want:   []string{"deploy acme/app 16.0 #14", "deploy acme/app pr 4 on 16.0 #9"},
		},
		{
			name:   "deploying off: only undeploys",
			builds: acceptance(),
			read:   Read{Repos: map[string]github.Repository{"acme/app": now}},
			edit:   func(s *Settings) { s.Reconciler.Deploy = false },
			want:   []string{"undeploy #2: pull request closed on GitHub", "undeploy #5: branch deleted on GitHub"},
		},
		{
			name:   "heads known from the previous run are not deployed again (evicted builds)",
			builds: acceptance(),
			read: Read{
				Repos:    map[string]github.Repository{"acme/app": now},
				Previous: map[string]github.Repository{"acme/app": now},
			},
			want: []string{"undeploy #2: pull request closed on GitHub", "undeploy #5: branch deleted on GitHub"},
		},
		{
			name: "builds no rule supports are undeployed, read or not; builds being undeployed are left",
			builds: jt.Builds(
				jt.Spec{N: 1, Repo: "other/x", Branch: "16.0"},
				jt.Spec{N: 2, Branch: "15.0"},
				jt.Spec{N: 3, Branch: "16.0", PR: 7, Deleting: true},
			),
			read: Read{Unread: map[string]error{"acme/app": errors.New("boom")}},
			want: []string{
				"undeploy #1: repository or branch not supported by RUNBOAT_REPOS any more",
				"undeploy #2: repository or branch not supported by RUNBOAT_REPOS any more",
				"unread acme/app",
			},
		},
		{
			name:   "a pull request retargeted: its builds undeployed, its head deployed on the new base",
			builds: jt.Builds(jt.Spec{N: 1, Branch: "16.0", PR: 1}),
			read:   Read{Repos: map[string]github.Repository{"acme/app": repo(nil, pull(1, "17.0", 1))}},
			want:   []string{"undeploy #1: pull request retargeted to 17.0 on GitHub", "deploy acme/app pr 1 on 17.0 #1"},
		},
		{
			name:   "a head with a build being undeployed is not deployed again",
			builds: jt.Builds(jt.Spec{N: 1, Branch: "16.0", Deleting: true}),
			read:   Read{Repos: map[string]github.Repository{"acme/app": repo(map[string]int{"16.0": 1})}},
		},
		{
			name:   "at most MAX_DEPLOYED deploys a pass",
			builds: nil,
			read: Read{Repos: map[string]github.Repository{"acme/app": repo(map[string]int{"16.0": 1, "17.0": 2},
				pull(1, "16.0", 3), pull(2, "16.0", 4))}},
			edit: func(s *Settings) { s.Quotas.MaxDeployed = 2 },
			want: []string{"deploy acme/app 16.0 #1", "deploy acme/app 17.0 #2", "defer 2"},
		},
		{
			name:   "a head GitHub gives that is no commit fails the pass",
			builds: nil,
			read: Read{Repos: map[string]github.Repository{"acme/app": {Repo: "acme/app",
				Branches: map[string]string{"16.0": "nope"}}}},
			want: []string{`invalid acme/app 16.0 pr 0 commit "nope"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings()
			if tc.edit != nil {
				tc.edit(&s)
			}
			jt.Check(t, runner.Plan{Actions: Plan(tc.builds, tc.read, s)}, short, tc.want...)
		})
	}
}

func TestRepos(t *testing.T) {
	s := settings()
	s.Reconciler.Repos = config.RepoList{"acme/extra", "acme/app"}
	builds := jt.Builds(
		jt.Spec{N: 1, Branch: "16.0"},
		jt.Spec{N: 2, Repo: "acme/lib", Branch: "17.0"},
		jt.Spec{N: 3, Repo: "other/x", Branch: "16.0"},                   // no rule: not read
		jt.Spec{N: 4, Repo: "acme/gone", Branch: "16.0", Deleting: true}, // undeploying: not read
	)
	if got, want := Repos(builds, s), []string{"acme/app", "acme/extra", "acme/lib"}; !slices.Equal(got, want) {
		t.Errorf("Repos = %v, want %v", got, want)
	}
}
