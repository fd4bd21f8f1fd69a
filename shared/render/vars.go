package render

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"runboat.dev/shared/model"
)

// Mode is a kubefiles mode: the set of objects applied at one step of a
// build's life. Each mode is a folder of the kubefiles folder.
type Mode string

const (
	// ModeDeployment holds the build's Deployment and what it needs to run
	// (Service, Ingress, volumes). Applied once, when the build is created.
	ModeDeployment Mode = "deployment"
	// ModeInitialize holds the init Job.
	ModeInitialize Mode = "initialize"
	// ModeCleanup holds the cleanup Job, run before a build is deleted.
	ModeCleanup Mode = "cleanup"
	// ModeStart is optional; it is applied just before the build is scaled up.
	ModeStart Mode = "start"
	// ModeStop is optional; it is applied just after the build is scaled down.
	ModeStop Mode = "stop"
)

// Valid reports whether m is one of the known modes.
func (m Mode) Valid() bool {
	switch m {
	case ModeDeployment, ModeInitialize, ModeCleanup, ModeStart, ModeStop:
		return true
	}
	return false
}

// Optional reports whether a kubefiles folder may lack the mode.
func (m Mode) Optional() bool {
	return m == ModeStart || m == ModeStop
}

// jobKind is the runboat/job-kind of the Job of the mode, empty for the
// modes that have none.
func (m Mode) jobKind() model.JobKind {
	switch m {
	case ModeInitialize:
		return model.JobInitialize
	case ModeCleanup:
		return model.JobCleanup
	}
	return ""
}

// Keys of the build variables ConfigMap (VarsConfigMap). Template vars are
// added beside them and may not reuse these keys.
const (
	// VarName is the build name.
	VarName = "name"
	// VarSlug is the build slug, the host name label of the build.
	VarSlug = "slug"
	// VarDomain is the build domain.
	VarDomain = "domain"
	// VarHost is <slug>.<domain>.
	VarHost = "host"
	// VarRepo is owner/name, lower case.
	VarRepo = "repo"
	// VarTargetBranch is the target branch.
	VarTargetBranch = "target_branch"
	// VarPR is the pull request number, empty for a branch build.
	VarPR = "pr"
	// VarCommit is the full commit sha.
	VarCommit = "commit"
)

// builtinVars are the keys of the build variables ConfigMap that Render sets
// itself.
var builtinVars = []string{VarName, VarSlug, VarDomain, VarHost, VarRepo, VarTargetBranch, VarPR, VarCommit}

// Vars is everything a render needs. Values are data: whatever they hold, they
// end up as inert strings in the rendered objects.
type Vars struct {
	// Name is the build name, a DNS label; every object is prefixed with
	// "<Name>-" and labelled runboat/build=<Name>.
	Name string
	// Slug is the host name label of the build (model.Ref.Slug).
	Slug string
	// Namespace is the namespace of the builds.
	Namespace string
	// Domain is the build domain: a build answers at <Slug>.<Domain>.
	Domain string
	// Image is the build image reference, [registry/]name[:tag][@digest]. It
	// replaces the image ImagePlaceholder in the kubefiles.
	Image string

	// Repo is owner/name, lower case.
	Repo string
	// TargetBranch is the branch the build is for.
	TargetBranch string
	// PR is the pull request number, empty for a branch build.
	PR string
	// Commit is the full sha of the built commit.
	Commit string
	// Target is the value of the runboat/target label: what the build is
	// for, a branch or a pull request (model.Ref.TargetKey).
	Target string

	// Env is the content of the env ConfigMap (EnvConfigMap): BUILD_ENV,
	// merged by the caller with any env of the build.
	Env map[string]string
	// SecretEnv is the content of the env Secret (SecretEnvSecret):
	// BUILD_SECRET_ENV, merged by the caller with any secret env of the
	// build. Anyone who can open a pull request can read it.
	SecretEnv map[string]string
	// TemplateVars are added to the build variables ConfigMap
	// (VarsConfigMap); they override the kubefiles' defaults
	// (TemplateVarsFile).
	TemplateVars map[string]string

	// InitStatus is the initial runboat/init-status of the Deployment.
	// Deployment mode only.
	InitStatus model.InitStatus
	// LastScaled is the initial runboat/last-scaled of the Deployment.
	// Deployment mode only.
	LastScaled time.Time
}

// NewVars returns the Vars of a build identified by ref, with an init status
// of todo. The caller sets the namespace, domain, image, env, template vars
// and last-scaled time.
func NewVars(ref model.Ref) Vars {
	return Vars{
		Name:         ref.Name(),
		Slug:         ref.Slug(),
		Repo:         ref.Repo,
		TargetBranch: ref.TargetBranch,
		PR:           ref.PRString(),
		Commit:       ref.Commit,
		Target:       ref.TargetKey(),
		InitStatus:   model.InitTodo,
	}
}

// Host is the host name of the build: <Slug>.<Domain>.
func (v Vars) Host() string {
	return v.Slug + "." + v.Domain
}

// maxNameLen bounds the build name so that "<name>-<object name>" stays a
// valid DNS label for reasonably named objects.
const maxNameLen = 40

var (
	prRE     = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
	commitRE = regexp.MustCompile(`^[0-9a-f]{40}$|^[0-9a-f]{64}$`)
)

// validate reports every problem of v for a render of mode at once.
func (v Vars) validate(mode Mode) error {
	var errs []error
	add := func(field string, problems ...string) {
		for _, p := range problems {
			errs = append(errs, fmt.Errorf("invalid %s: %s", field, p))
		}
	}
	if len(v.Name) > maxNameLen {
		add("build name", fmt.Sprintf("longer than %d characters", maxNameLen))
	}
	add("build name", validation.IsDNS1123Label(v.Name)...)
	add("slug", validation.IsDNS1123Label(v.Slug)...)
	add("namespace", validation.IsDNS1123Label(v.Namespace)...)
	if v.Domain == "" {
		add("build domain", "empty")
	} else {
		add("build domain", validation.IsDNS1123Subdomain(v.Domain)...)
		if v.Slug != "" {
			add("build host", validation.IsDNS1123Subdomain(v.Host())...)
		}
	}
	if _, err := parseImage(v.Image); err != nil {
		add("image", err.Error())
	}
	if v.Repo == "" {
		add("repo", "empty")
	}
	if v.TargetBranch == "" {
		add("target branch", "empty")
	}
	if v.PR != "" && !prRE.MatchString(v.PR) {
		add("pr", fmt.Sprintf("%q is not a pull request number", v.PR))
	}
	if !commitRE.MatchString(v.Commit) {
		add("commit", fmt.Sprintf("%q is not a full lower-case hex sha", v.Commit))
	}
	if v.Target == "" {
		add("target", "empty")
	} else {
		add("target", validation.IsValidLabelValue(v.Target)...)
	}
	if !utf8.ValidString(v.Repo) {
		add("repo", "not valid UTF-8")
	}
	if !utf8.ValidString(v.TargetBranch) {
		add("target branch", "not valid UTF-8")
	}
	errs = append(errs, validateMap("env", v.Env)...)
	errs = append(errs, validateMap("secret env", v.SecretEnv)...)
	errs = append(errs, validateMap("template var", v.TemplateVars)...)
	if mode == ModeDeployment {
		switch v.InitStatus {
		case model.InitTodo, model.InitStarted, model.InitSucceeded, model.InitFailed:
		default:
			add("init status", fmt.Sprintf("%q is not a known init status", v.InitStatus))
		}
		if v.LastScaled.IsZero() {
			add("last-scaled time", "zero")
		}
	}
	return errors.Join(errs...)
}

// validateMap checks that the keys of m are valid ConfigMap keys and its
// values valid UTF-8 (a ConfigMap value is a string; invalid UTF-8 would not
// survive as is).
func validateMap(what string, m map[string]string) []error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		for _, p := range validation.IsConfigMapKey(k) {
			errs = append(errs, fmt.Errorf("invalid %s key %q: %s", what, k, p))
		}
		if !utf8.ValidString(m[k]) {
			errs = append(errs, fmt.Errorf("invalid %s %q: value is not valid UTF-8", what, k))
		}
	}
	return errs
}
