package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
)

// Quotas are the limits the jobs enforce.
type Quotas struct {
	// MaxInitializing is RUNBOAT_MAX_INITIALIZING, the most init Jobs
	// running at once.
	MaxInitializing int `env:"MAX_INITIALIZING" envDefault:"2"`
	// MaxStarted is RUNBOAT_MAX_STARTED, the most builds started at once.
	MaxStarted int `env:"MAX_STARTED" envDefault:"6"`
	// MaxDeployed is RUNBOAT_MAX_DEPLOYED, the most builds deployed at once.
	MaxDeployed int `env:"MAX_DEPLOYED" envDefault:"10"`
}

// Validate reports every problem, each naming its variable.
func (q Quotas) Validate() error {
	var errs []error
	for _, c := range []struct {
		name string
		v    int
	}{
		{"MAX_INITIALIZING", q.MaxInitializing},
		{"MAX_STARTED", q.MaxStarted},
		{"MAX_DEPLOYED", q.MaxDeployed},
	} {
		if c.v < 1 {
			errs = append(errs, fieldErr(c.name, "must be >= 1, got %d", c.v))
		}
	}
	return errors.Join(errs...)
}

// MarshalZerologObject logs the quotas.
func (q Quotas) MarshalZerologObject(e *zerolog.Event) {
	e.Int("max_initializing", q.MaxInitializing).
		Int("max_started", q.MaxStarted).
		Int("max_deployed", q.MaxDeployed)
}

// GitHub is the access to the GitHub API, for commit statuses.
type GitHub struct {
	// Token is RUNBOAT_GITHUB_TOKEN; empty means anonymous calls.
	Token Secret `env:"GITHUB_TOKEN"`
	// DisableCommitStatuses is RUNBOAT_DISABLE_COMMIT_STATUSES.
	DisableCommitStatuses bool `env:"DISABLE_COMMIT_STATUSES"`
	// AppID is RUNBOAT_GITHUB_APP_ID: with RUNBOAT_GITHUB_PRIVATE_KEY, the
	// program authenticates as this GitHub App's installation rather than
	// with a token.
	AppID int64 `env:"GITHUB_APP_ID"`
	// InstallationID is RUNBOAT_GITHUB_INSTALLATION_ID, the App's
	// installation; 0 finds the installation of each repository.
	InstallationID int64 `env:"GITHUB_INSTALLATION_ID"`
	// PrivateKey is RUNBOAT_GITHUB_PRIVATE_KEY, the App's private key
	// (PEM).
	PrivateKey Secret `env:"GITHUB_PRIVATE_KEY"`
	// APIURL is RUNBOAT_GITHUB_API_URL, the root of the REST API: empty
	// for https://api.github.com/, https://HOST/api/v3/ for GitHub
	// Enterprise Server.
	APIURL string `env:"GITHUB_API_URL"`
	// BaseURL is RUNBOAT_BASE_URL, where the runboat UI and API are
	// exposed; commit statuses link to it.
	BaseURL string `env:"BASE_URL" envDefault:"http://localhost:8000"`
}

// Validate reports every problem, each naming its variable.
func (g GitHub) Validate() error {
	var errs []error
	if err := checkHTTPURL(g.BaseURL); err != nil {
		errs = append(errs, fieldErr("BASE_URL", "%w", err))
	}
	if g.APIURL != "" {
		if err := checkHTTPURL(g.APIURL); err != nil {
			errs = append(errs, fieldErr("GITHUB_API_URL", "%w", err))
		}
	}
	switch {
	case g.AppID < 0:
		errs = append(errs, fieldErr("GITHUB_APP_ID", "must be > 0, got %d", g.AppID))
	case g.AppID > 0 && g.PrivateKey == "":
		errs = append(errs, fieldErr("GITHUB_PRIVATE_KEY", "required with %sGITHUB_APP_ID", Prefix))
	case g.AppID == 0 && g.PrivateKey != "":
		errs = append(errs, fieldErr("GITHUB_APP_ID", "required with %sGITHUB_PRIVATE_KEY", Prefix))
	case g.AppID == 0 && g.InstallationID != 0:
		errs = append(errs, fieldErr("GITHUB_APP_ID", "required with %sGITHUB_INSTALLATION_ID", Prefix))
	case g.AppID > 0 && g.Token != "":
		errs = append(errs, fieldErr("GITHUB_TOKEN", "set either a token or a GitHub App (%sGITHUB_APP_ID), not both", Prefix))
	}
	if g.InstallationID < 0 {
		errs = append(errs, fieldErr("GITHUB_INSTALLATION_ID", "must be > 0, got %d", g.InstallationID))
	}
	return errors.Join(errs...)
}

// checkHTTPURL checks an absolute http or https URL. Its errors never quote
// the URL, which could hold credentials.
func checkHTTPURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL: %w", err)
	}
	switch {
	case u.User != nil:
		return errors.New("must not hold credentials")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an http:// or https:// URL")
	case u.Host == "":
		return errors.New("want an http:// or https:// URL with a host")
	}
	return nil
}

// MarshalZerologObject logs the settings, the token redacted.
func (g GitHub) MarshalZerologObject(e *zerolog.Event) {
	e.Stringer("github_token", g.Token).
		Int64("github_app_id", g.AppID).
		Int64("github_installation_id", g.InstallationID).
		Stringer("github_private_key", g.PrivateKey).
		Str("github_api_url", g.APIURL).
		Bool("disable_commit_statuses", g.DisableCommitStatuses).
		Str("base_url", g.BaseURL)
}

// Webhook is how GitHub webhooks are verified.
type Webhook struct {
	// Secret is RUNBOAT_GITHUB_WEBHOOK_SECRET, the key of the signatures.
	Secret Secret `env:"GITHUB_WEBHOOK_SECRET"`
	// Insecure is RUNBOAT_GITHUB_WEBHOOK_INSECURE: without a secret,
	// webhooks are accepted unsigned only when it is true (the Python
	// runboat accepts them silently).
	Insecure bool `env:"GITHUB_WEBHOOK_INSECURE"`
}

// Validate refuses a missing secret unless Insecure is set.
func (w Webhook) Validate() error {
	if w.Secret == "" && !w.Insecure {
		return fieldErr("GITHUB_WEBHOOK_SECRET", "required to verify webhook signatures (set %sGITHUB_WEBHOOK_INSECURE=true to accept unsigned webhooks)", Prefix)
	}
	return nil
}

// MarshalZerologObject logs the settings, the secret redacted.
func (w Webhook) MarshalZerologObject(e *zerolog.Event) {
	e.Stringer("github_webhook_secret", w.Secret).
		Bool("github_webhook_insecure", w.Insecure)
}

// Cleanup is how undeployed builds are removed.
type Cleanup struct {
	// DeploymentResourceTypes is RUNBOAT_DEPLOYMENT_RESOURCE_TYPES, the
	// resource types (comma separated) the kubefiles create in deployment
	// mode; the resources of these types labelled with a build are deleted
	// when the build is undeployed.
	DeploymentResourceTypes ResourceTypes `env:"DEPLOYMENT_RESOURCE_TYPES" envDefault:"deployment,service,ingress,configmap,secret,pvc,job"`
	// NoCleanupJob is RUNBOAT_NO_CLEANUP_JOB: deleting the resources is
	// enough, no cleanup Job is run.
	NoCleanupJob bool `env:"NO_CLEANUP_JOB"`
}

// ResourceTypes is a comma separated list of resource types, as kubectl
// takes them ("deployment", "pvc", "ingresses.networking.k8s.io").
type ResourceTypes []string

// UnmarshalText splits the list on commas, trimming spaces.
func (r *ResourceTypes) UnmarshalText(text []byte) error {
	parts := strings.Split(string(text), ",")
	out := make(ResourceTypes, len(parts))
	for i, p := range parts {
		out[i] = strings.TrimSpace(p)
	}
	*r = out
	return nil
}

// String joins the list with commas.
func (r ResourceTypes) String() string { return strings.Join(r, ",") }

var resourceTypeRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// Validate reports every problem, each naming its variable.
func (c Cleanup) Validate() error {
	if len(c.DeploymentResourceTypes) == 0 {
		return fieldErr("DEPLOYMENT_RESOURCE_TYPES", "must list at least one resource type")
	}
	var errs []error
	for i, t := range c.DeploymentResourceTypes {
		if !resourceTypeRE.MatchString(t) {
			errs = append(errs, fieldErr("DEPLOYMENT_RESOURCE_TYPES", "entry %d: invalid resource type %q", i, t))
		}
	}
	return errors.Join(errs...)
}

// MarshalZerologObject logs the settings.
func (c Cleanup) MarshalZerologObject(e *zerolog.Event) {
	e.Strs("deployment_resource_types", c.DeploymentResourceTypes).
		Bool("no_cleanup_job", c.NoCleanupJob)
}

// API is the protection of the most sensitive operations of the API.
type API struct {
	// AdminUser is RUNBOAT_API_ADMIN_USER.
	AdminUser string `env:"API_ADMIN_USER,required"`
	// AdminPasswd is RUNBOAT_API_ADMIN_PASSWD.
	AdminPasswd Secret `env:"API_ADMIN_PASSWD,required"`
}

// Validate reports every problem, each naming its variable.
func (a API) Validate() error {
	var errs []error
	if a.AdminUser == "" {
		errs = append(errs, fieldErr("API_ADMIN_USER", "required"))
	}
	if a.AdminPasswd == "" {
		errs = append(errs, fieldErr("API_ADMIN_PASSWD", "required"))
	}
	return errors.Join(errs...)
}

// MarshalZerologObject logs the settings, the password redacted.
func (a API) MarshalZerologObject(e *zerolog.Event) {
	e.Str("api_admin_user", a.AdminUser).
		Stringer("api_admin_passwd", a.AdminPasswd)
}
