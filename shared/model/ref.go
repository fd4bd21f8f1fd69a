package model

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Ref identifies a build: one commit of a repository, built against a target
// branch, either for that branch itself (PR 0) or for a pull request.
type Ref struct {
	// Repo is owner/name, lower case.
	Repo string
	// TargetBranch is the branch the build is for (the base of a PR).
	TargetBranch string
	// PR is the pull request number, 0 for a branch build.
	PR int
	// Commit is the full sha of the built commit.
	Commit string
}

var (
	repoRE   = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,38})/[a-z0-9._-]{1,100}$`)
	commitRE = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)
)

// maxBranchLen bounds the target branch, in bytes: far above what GitHub
// accepts, it only keeps absurd input out of annotations.
const maxBranchLen = 1024

// NewRef returns a normalized, validated Ref.
func NewRef(repo, targetBranch string, pr int, commit string) (Ref, error) {
	r := Ref{
		Repo:         strings.ToLower(repo),
		TargetBranch: targetBranch,
		PR:           pr,
		Commit:       strings.ToLower(commit),
	}
	return r, r.Validate()
}

// Validate reports every problem of the Ref at once.
func (r Ref) Validate() error {
	var errs []error
	if err := ValidateRepo(r.Repo); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateBranch(r.TargetBranch); err != nil {
		errs = append(errs, err)
	}
	if r.PR < 0 {
		errs = append(errs, fmt.Errorf("invalid pull request number %d", r.PR))
	}
	if !commitRE.MatchString(r.Commit) {
		errs = append(errs, fmt.Errorf("invalid commit %q: want a full hex sha", r.Commit))
	}
	return errors.Join(errs...)
}

// ValidateRepo reports whether repo can be the repository of a Ref: owner/name
// in lower case (NewRef lower-cases it).
func ValidateRepo(repo string) error {
	if !repoRE.MatchString(repo) {
		return fmt.Errorf("invalid repository %q: want owner/name in lower case", repo)
	}
	return nil
}

// ValidateBranch reports whether branch can be the target branch of a Ref.
func ValidateBranch(branch string) error {
	switch {
	case branch == "":
		return errors.New("empty target branch")
	case len(branch) > maxBranchLen:
		return fmt.Errorf("target branch longer than %d bytes", maxBranchLen)
	case !utf8.ValidString(branch):
		return errors.New("target branch is not valid UTF-8")
	}
	return nil
}

// Name is the build name: deterministic, so that a redelivered or concurrent
// webhook finds the same name and the create of its Deployment is the lock.
// It is a valid DNS label and label value.
func (r Ref) Name() string {
	return "b" + shortHash(r.Repo, r.TargetBranch, strconv.Itoa(r.PR), r.Commit)
}

// TargetKey is the value of the runboat/target label: a short hash of the
// repository and of the branch (branch builds) or the pull request number (PR
// builds, whatever their target branch, which a PR may change).
func (r Ref) TargetKey() string {
	if r.PR != 0 {
		return PRKey(r.Repo, r.PR)
	}
	return BranchKey(r.Repo, r.TargetBranch)
}

// BranchKey is the runboat/target label value of the branch builds of a
// branch.
func BranchKey(repo, branch string) string {
	return "br-" + shortHash(strings.ToLower(repo), branch)
}

// Labels are the labels of every object of the build of r: runboat/build
// and the selecting labels this project adds (its Deployment also has
// runboat/init-status).
func (r Ref) Labels() map[string]string {
	return map[string]string{
		LabelBuild:  r.Name(),
		LabelCommit: CommitLabel(r.Commit),
		LabelTarget: r.TargetKey(),
		LabelRepo:   RepoKey(r.Repo),
	}
}

// RepoKey is the runboat/repo-key label value of the builds of a
// repository (any case).
func RepoKey(repo string) string {
	return "rp-" + shortHash(strings.ToLower(repo))
}

// PRKey is the runboat/target label value of the builds of a pull request.
func PRKey(repo string, pr int) string {
	return "pr-" + shortHash(strings.ToLower(repo), strconv.Itoa(pr))
}

// shortHash hashes parts, each terminated by a NUL so that no two lists of
// parts hash alike, into 20 hex digits.
func shortHash(parts ...string) string {
	h := sha256.New()
	for _, part := range parts {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// PRString is the value of the runboat/pr annotation: empty for a branch.
func (r Ref) PRString() string {
	if r.PR == 0 {
		return ""
	}
	return strconv.Itoa(r.PR)
}

// maxDNSLabel is the length limit of a DNS label (RFC 1123).
const maxDNSLabel = 63

// Slug is the host name label of the build:
// <repo>-<target branch>[-pr<N>]-<first 12 of the sha>, lower case, every
// character outside [a-z0-9] replaced by '-', cut to a valid DNS label. When
// too long, the repo and branch part is shortened so that the PR and commit
// parts, which make the slug unique, are kept whole.
func (r Ref) Slug() string {
	suffix := ""
	if r.PR != 0 {
		suffix = "-pr" + strconv.Itoa(r.PR)
	}
	sha := r.Commit
	if len(sha) > 12 {
		sha = sha[:12]
	}
	suffix += "-" + slugify(sha)
	prefix := slugify(r.Repo) + "-" + slugify(r.TargetBranch)
	if max := maxDNSLabel - len(suffix); len(prefix) > max {
		prefix = prefix[:max]
	}
	// Only a leading dash would make the label invalid (the suffix ends with
	// the sha); dashes elsewhere are kept, as the Python runboat keeps them.
	return strings.TrimLeft(prefix, "-") + suffix
}

// slugify lower-cases s and replaces every character outside [a-z0-9] with
// '-', one dash per character, as the Python runboat does.
func slugify(s string) string {
	return strings.Map(func(c rune) rune {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			return c
		}
		return '-'
	}, strings.ToLower(s))
}
