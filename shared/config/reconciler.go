package config

import (
	"errors"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
)

// Reconciler tunes the reconciler job, which compares GitHub with the
// builds. These settings are this project's: the Python runboat has no
// reconciler.
type Reconciler struct {
	// Undeploy is RUNBOAT_RECONCILE_UNDEPLOY: the reconciler undeploys the
	// builds of closed pull requests, of deleted branches and of
	// repositories or branches no rule supports any more. The Python
	// runboat never does: set it to false to keep them.
	Undeploy bool `env:"RECONCILE_UNDEPLOY" envDefault:"true"`
	// Deploy is RUNBOAT_RECONCILE_DEPLOY: the reconciler deploys the head
	// commit of each supported branch and open pull request that has no
	// build of it (a lost webhook).
	Deploy bool `env:"RECONCILE_DEPLOY" envDefault:"true"`
	// Repos is RUNBOAT_RECONCILE_REPOS: repositories (owner/name, comma
	// separated) to look at besides those that have builds; the rules of
	// RUNBOAT_REPOS are regular expressions, which cannot be listed.
	Repos RepoList `env:"RECONCILE_REPOS"`
	// MaxRequests is RUNBOAT_RECONCILE_MAX_REQUESTS: the most GitHub
	// requests of one run (conditional ones answered 304 included). A run
	// that would make more stops, changes nothing of the repositories it
	// could not read, and fails.
	MaxRequests int `env:"RECONCILE_MAX_REQUESTS" envDefault:"500"`
}

// RepoList is a comma separated list of repositories, owner/name, kept
// lower case.
type RepoList []string

// UnmarshalText splits the list on commas, trimming spaces and dropping
// empty entries.
func (r *RepoList) UnmarshalText(text []byte) error {
	var out RepoList
	for p := range strings.SplitSeq(string(text), ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			out = append(out, p)
		}
	}
	*r = out
	return nil
}

// String joins the list with commas.
func (r RepoList) String() string { return strings.Join(r, ",") }

// repoRE is a repository's full name as GitHub allows it.
var repoRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?/[a-z0-9._-]+$`)

// ValidRepo tells whether s is a repository's full name, owner/name, lower
// case.
func ValidRepo(s string) bool { return repoRE.MatchString(s) }

// Validate reports every problem, each naming its variable.
func (r Reconciler) Validate() error {
	var errs []error
	for i, repo := range r.Repos {
		if !ValidRepo(repo) {
			errs = append(errs, fieldErr("RECONCILE_REPOS", "entry %d: want owner/name, got %q", i, repo))
		}
	}
	if r.MaxRequests < 1 {
		errs = append(errs, fieldErr("RECONCILE_MAX_REQUESTS", "must be >= 1, got %d", r.MaxRequests))
	}
	return errors.Join(errs...)
}

// MarshalZerologObject logs the settings.
func (r Reconciler) MarshalZerologObject(e *zerolog.Event) {
	e.Bool("reconcile_undeploy", r.Undeploy).
		Bool("reconcile_deploy", r.Deploy).
		Strs("reconcile_repos", r.Repos).
		Int("reconcile_max_requests", r.MaxRequests)
}
