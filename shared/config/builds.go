package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Builds is what builds are made of: the supported repositories and
// branches with their build settings, and where and how builds are deployed.
type Builds struct {
	// Repos is RUNBOAT_REPOS: the supported repositories and branches, in
	// order; the first rule that matches applies.
	Repos RepoRules `env:"REPOS,required"`
	// Namespace is RUNBOAT_BUILD_NAMESPACE, where builds are deployed.
	Namespace string `env:"BUILD_NAMESPACE,required"`
	// Domain is RUNBOAT_BUILD_DOMAIN, the wildcard domain under which a
	// started build answers at <slug>.<domain>.
	Domain string `env:"BUILD_DOMAIN,required"`
	// Env is RUNBOAT_BUILD_ENV, environment variables of every build (a
	// rule's env extends and overrides it).
	Env StringMap `env:"BUILD_ENV"`
	// SecretEnv is RUNBOAT_BUILD_SECRET_ENV, secret environment variables of
	// every build (a rule's secret_env extends and overrides it). Whoever
	// can open a pull request can read them.
	SecretEnv SecretMap `env:"BUILD_SECRET_ENV"`
	// TemplateVars is RUNBOAT_BUILD_TEMPLATE_VARS, variables made available
	// to the kubefiles (a rule's template_vars extend and override them).
	TemplateVars StringMap `env:"BUILD_TEMPLATE_VARS"`
	// DefaultKubefilesPath is RUNBOAT_BUILD_DEFAULT_KUBEFILES_PATH, the
	// kubefiles of the rules that name none. Empty means the kubefiles
	// bundled with the program.
	DefaultKubefilesPath string `env:"BUILD_DEFAULT_KUBEFILES_PATH"`
}

// BuildSettings is the build of a repository rule, the "builds" entries of
// RUNBOAT_REPOS.
type BuildSettings struct {
	// Image is the container image (name:tag) of the build.
	Image string `json:"image"`
	// KubefilesPath is the kubefiles folder of the build; empty means the
	// default one (see Builds.KubefilesPath).
	KubefilesPath string `json:"kubefiles_path,omitempty"`
	// Env extends the global RUNBOAT_BUILD_ENV.
	Env map[string]string `json:"env,omitempty"`
	// SecretEnv extends the global RUNBOAT_BUILD_SECRET_ENV.
	SecretEnv SecretMap `json:"secret_env,omitempty"`
	// TemplateVars extends the global RUNBOAT_BUILD_TEMPLATE_VARS.
	TemplateVars map[string]string `json:"template_vars,omitempty"`
}

// RepoRule is one entry of RUNBOAT_REPOS: regular expressions for the
// repository (owner/name, matched case-insensitively) and the target branch,
// each matched from the start of the string and not necessarily to its end
// (Python's re.match; write "^16.0$" to match one branch exactly), and the
// build to make. Make one with NewRepoRule or by decoding JSON, which
// compile the expressions once.
type RepoRule struct {
	// Builds holds exactly one build, as in the Python runboat.
	Builds []BuildSettings

	repoPattern, branchPattern string
	repo, branch               *regexp.Regexp
}

// NewRepoRule compiles a rule.
func NewRepoRule(repo, branch string, builds ...BuildSettings) (RepoRule, error) {
	r := RepoRule{Builds: builds}
	if err := r.compile(repo, branch); err != nil {
		return RepoRule{}, err
	}
	return r, nil
}

// MustRepoRule is NewRepoRule for rules written in code; it panics on an
// invalid expression.
func MustRepoRule(repo, branch string, builds ...BuildSettings) RepoRule {
	r, err := NewRepoRule(repo, branch, builds...)
	if err != nil {
		panic(err)
	}
	return r
}

func (r *RepoRule) compile(repo, branch string) error {
	var errs []error
	r.repoPattern, r.branchPattern = repo, branch
	re, err := compileAnchored("(?i)", repo)
	if err != nil {
		errs = append(errs, fmt.Errorf("repo: invalid regular expression %q: %w", repo, err))
	}
	r.repo = re
	re, err = compileAnchored("", branch)
	if err != nil {
		errs = append(errs, fmt.Errorf("branch: invalid regular expression %q: %w", branch, err))
	}
	r.branch = re
	return errors.Join(errs...)
}

// compileAnchored compiles pattern anchored at the start, as Python's
// re.match applies it. The pattern is checked alone first, so that one such
// as "a)|(b" cannot escape the anchoring group.
func compileAnchored(flags, pattern string) (*regexp.Regexp, error) {
	if _, err := syntax.Parse(pattern, syntax.Perl); err != nil {
		return nil, regexpError(err)
	}
	re, err := regexp.Compile(flags + `^(?:` + pattern + `)`)
	if err != nil {
		return nil, regexpError(err)
	}
	return re, nil
}

// regexpError keeps the code of a regexp error and drops its expression:
// the expression compiled is the user's wrapped in anchors, which would
// confuse; the user's expression is quoted by the caller.
func regexpError(err error) error {
	var se *syntax.Error
	if errors.As(err, &se) {
		return errors.New(se.Code.String())
	}
	return err
}

// RepoPattern is the repository expression as written.
func (r RepoRule) RepoPattern() string { return r.repoPattern }

// BranchPattern is the branch expression as written.
func (r RepoRule) BranchPattern() string { return r.branchPattern }

// Matches tells whether the rule applies to a repository and target branch.
// A rule not made by NewRepoRule or decoding, or with an invalid
// expression, matches nothing.
func (r RepoRule) Matches(repo, targetBranch string) bool {
	return r.repo != nil && r.branch != nil &&
		r.repo.MatchString(repo) && r.branch.MatchString(targetBranch)
}

// Validate reports every problem of the rule.
func (r RepoRule) Validate() error {
	var errs []error
	if r.repo == nil || r.branch == nil {
		if err := r.compileCheck(); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, errors.New("expressions not compiled: make rules with NewRepoRule"))
		}
	}
	if len(r.Builds) != 1 {
		errs = append(errs, fmt.Errorf("builds: want exactly one build, got %d", len(r.Builds)))
	}
	for i, b := range r.Builds {
		for _, e := range flatten(b.Validate()) {
			errs = append(errs, fmt.Errorf("builds[%d]: %w", i, e))
		}
	}
	return errors.Join(errs...)
}

// compileCheck compiles the expressions without keeping them.
func (r RepoRule) compileCheck() error {
	var c RepoRule
	return c.compile(r.repoPattern, r.branchPattern)
}

// repoRuleJSON is the JSON form of a RepoRule.
type repoRuleJSON struct {
	Repo   *string         `json:"repo"`
	Branch *string         `json:"branch"`
	Builds []BuildSettings `json:"builds"`
}

// MarshalJSON encodes the rule as in RUNBOAT_REPOS, secrets redacted.
func (r RepoRule) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(repoRuleJSON{Repo: &r.repoPattern, Branch: &r.branchPattern, Builds: r.Builds})
	if err != nil {
		return nil, fmt.Errorf("failed to marshal repository rule: %w", err)
	}
	return b, nil
}

// Validate reports every problem of the build settings.
func (b BuildSettings) Validate() error {
	var errs []error
	switch {
	case b.Image == "":
		errs = append(errs, errors.New("image: required"))
	case strings.ContainsFunc(b.Image, isSpaceOrControl):
		errs = append(errs, fmt.Errorf("image %q: must not contain spaces", b.Image))
	}
	errs = append(errs, keysError("env", keysOf(b.Env)))
	errs = append(errs, keysError("secret_env", b.SecretEnv.Keys()))
	errs = append(errs, keysError("template_vars", keysOf(b.TemplateVars)))
	return errors.Join(errs...)
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// RepoRules is the list of RUNBOAT_REPOS, read from its JSON form:
// [{"repo": "^oca/.*", "branch": "^16.0$", "builds": [{"image": "...",
// "kubefiles_path": "...", "env": {}, "secret_env": {}, "template_vars": {}}]}].
// Unknown keys are ignored, as the Python runboat does.
type RepoRules []RepoRule

// UnmarshalText reads the JSON form. It fails only on what cannot be read
// (JSON syntax, types, missing keys); invalid expressions and the like are
// kept for Validate to report with the rest.
func (rs *RepoRules) UnmarshalText(text []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(text, &raw); err != nil {
		return jsonError(err, "a JSON list of repository rules")
	}
	var errs []error
	out := make(RepoRules, 0, len(raw))
	index := make([]int, 0, len(raw))
	for i, m := range raw {
		var j repoRuleJSON
		if err := json.Unmarshal(m, &j); err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, jsonError(err, `an object with "repo", "branch" and "builds"`)))
			continue
		}
		var missing []string
		if j.Repo == nil {
			missing = append(missing, `"repo"`)
		}
		if j.Branch == nil {
			missing = append(missing, `"branch"`)
		}
		if j.Builds == nil {
			missing = append(missing, `"builds"`)
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("rule %d: missing %s", i, strings.Join(missing, ", ")))
			continue
		}
		r := RepoRule{Builds: j.Builds}
		// An invalid expression leaves a nil regexp, reported by Validate.
		_ = r.compile(*j.Repo, *j.Branch)
		out = append(out, r)
		index = append(index, i)
	}
	if len(errs) > 0 {
		// Report the problems of the rules that could be read too, so that
		// everything is said at once.
		for k, r := range out {
			for _, e := range flatten(r.Validate()) {
				errs = append(errs, fmt.Errorf("rule %d (repo %q, branch %q): %w", index[k], r.repoPattern, r.branchPattern, e))
			}
		}
		return errors.Join(errs...)
	}
	*rs = out
	return nil
}

// UnmarshalJSON is UnmarshalText, for RUNBOAT_REPOS embedded in JSON.
func (rs *RepoRules) UnmarshalJSON(b []byte) error { return rs.UnmarshalText(b) }

// StringMap is a JSON object of strings, such as RUNBOAT_BUILD_ENV.
type StringMap map[string]string

// UnmarshalText reads a JSON object of strings.
func (m *StringMap) UnmarshalText(text []byte) error { return unmarshalStrings(text, m) }

// UnmarshalJSON reads a JSON object of strings.
func (m *StringMap) UnmarshalJSON(b []byte) error { return m.UnmarshalText(b) }

// UnmarshalJSON reads a JSON object of strings.
func (m *SecretMap) UnmarshalJSON(b []byte) error { return m.UnmarshalText(b) }

// maxDomainLen keeps <slug>.<domain> within the 253 bytes of a host name,
// the slug being a DNS label of at most 63.
const maxDomainLen = 253 - 63 - 1

// Validate reports every problem, each naming its variable.
func (b Builds) Validate() error {
	var errs []error
	if len(b.Repos) == 0 {
		errs = append(errs, fieldErr("REPOS", "must list at least one repository rule"))
	}
	for i, r := range b.Repos {
		if err := r.Validate(); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fieldErr("REPOS", "rule %d (repo %q, branch %q): %w", i, r.repoPattern, r.branchPattern, e))
			}
		}
	}
	if b.Namespace == "" {
		errs = append(errs, fieldErr("BUILD_NAMESPACE", "required"))
	} else if msgs := validation.IsDNS1123Label(b.Namespace); len(msgs) > 0 {
		errs = append(errs, fieldErr("BUILD_NAMESPACE", "invalid namespace %q: %s", b.Namespace, strings.Join(msgs, "; ")))
	}
	switch {
	case b.Domain == "":
		errs = append(errs, fieldErr("BUILD_DOMAIN", "required"))
	case len(b.Domain) > maxDomainLen:
		errs = append(errs, fieldErr("BUILD_DOMAIN", "longer than %d bytes: <slug>.<domain> would not be a valid host name", maxDomainLen))
	default:
		if msgs := validation.IsDNS1123Subdomain(b.Domain); len(msgs) > 0 {
			errs = append(errs, fieldErr("BUILD_DOMAIN", "invalid domain %q (write it without \"*.\"): %s", b.Domain, strings.Join(msgs, "; ")))
		}
	}
	for _, e := range flatten(keysError("keys", keysOf(b.Env))) {
		errs = append(errs, fieldErr("BUILD_ENV", "%w", e))
	}
	for _, e := range flatten(keysError("keys", b.SecretEnv.Keys())) {
		errs = append(errs, fieldErr("BUILD_SECRET_ENV", "%w", e))
	}
	for _, e := range flatten(keysError("keys", keysOf(b.TemplateVars))) {
		errs = append(errs, fieldErr("BUILD_TEMPLATE_VARS", "%w", e))
	}
	return errors.Join(errs...)
}

// keysError reports the keys that are not valid ConfigMap and Secret keys
// (what they become in a build).
func keysError(what string, keys []string) error {
	var errs []error
	for _, k := range keys {
		if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s: invalid name %q: %s", what, k, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}

// keysOf returns the keys of m, sorted.
func keysOf(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// Match returns the build of the first rule matching the repository and
// target branch, as the Python runboat's get_build_settings(...)[0]; false
// when no rule matches.
func (b Builds) Match(repo, targetBranch string) (BuildSettings, bool) {
	for _, r := range b.Repos {
		if r.Matches(repo, targetBranch) {
			if len(r.Builds) == 0 {
				return BuildSettings{}, false
			}
			return r.Builds[0], true
		}
	}
	return BuildSettings{}, false
}

// Supported tells whether builds are made for the repository and target
// branch.
func (b Builds) Supported(repo, targetBranch string) bool {
	_, ok := b.Match(repo, targetBranch)
	return ok
}

// KubefilesPath is the kubefiles folder of a build: its own, else
// RUNBOAT_BUILD_DEFAULT_KUBEFILES_PATH; empty means the kubefiles bundled
// with the program.
func (b Builds) KubefilesPath(bs BuildSettings) string {
	if bs.KubefilesPath != "" {
		return bs.KubefilesPath
	}
	return b.DefaultKubefilesPath
}

// Effective returns bs completed with the global settings: the kubefiles
// path of KubefilesPath, and env, secret_env and template_vars merged over
// RUNBOAT_BUILD_ENV, RUNBOAT_BUILD_SECRET_ENV and
// RUNBOAT_BUILD_TEMPLATE_VARS (the build's values win). The maps are new.
func (b Builds) Effective(bs BuildSettings) BuildSettings {
	out := bs
	out.KubefilesPath = b.KubefilesPath(bs)
	out.Env = merge(b.Env, bs.Env)
	out.SecretEnv = SecretMap(merge(b.SecretEnv, bs.SecretEnv))
	out.TemplateVars = merge(b.TemplateVars, bs.TemplateVars)
	return out
}

// merge returns a new map with the entries of global, then of local.
func merge[M ~map[string]V, N ~map[string]V, V any](global M, local N) map[string]V {
	out := make(map[string]V, len(global)+len(local))
	maps.Copy(out, global)
	maps.Copy(out, local)
	return out
}

// MarshalZerologObject logs the settings, secrets redacted.
func (b Builds) MarshalZerologObject(e *zerolog.Event) {
	e.Interface("repos", b.Repos).
		Str("build_namespace", b.Namespace).
		Str("build_domain", b.Domain).
		Interface("build_env", b.Env).
		Interface("build_secret_env", b.SecretEnv).
		Interface("build_template_vars", b.TemplateVars).
		Str("build_default_kubefiles_path", b.DefaultKubefilesPath)
}
