package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// full is a configuration with every part, as a binary would declare it.
type full struct {
	Builds
	Quotas
	GitHub
	Webhook
	Cleanup
	API
}

// pythonEnv is a configuration as written for the Python runboat.
func pythonEnv() map[string]string {
	return map[string]string{
		"RUNBOAT_REPOS": `[
			{"repo": "^oca/mis-builder$", "branch": "^15.0$", "builds": [{"image": "ghcr.io/oca/oca-ci/py3.8-odoo15.0:latest"}]},
			{"repo": "^oca/mis-builder$", "branch": "^16.0$", "builds": [{"image": "ghcr.io/oca/oca-ci/py3.10-odoo16.0:latest", "kubefiles_path": "kubefiles/custom"}]},
			{"repo": "^oca/.*", "branch": "^17.0$", "builds": [{"image": "ghcr.io/oca/oca-ci/py3.10-odoo17.0:latest",
				"env": {"ODOO_VERSION": "17.0", "PGHOST": "pg17"}, "secret_env": {"PGPASSWORD": "rule-SECRET-5"},
				"template_vars": {"storageClassName": "fast"}, "unknown_key": "ignored"}]}
		]`,
		"RUNBOAT_API_ADMIN_USER":               "admin",
		"RUNBOAT_API_ADMIN_PASSWD":             "pwd-SECRET-3",
		"RUNBOAT_BUILD_NAMESPACE":              "runboat-builds",
		"RUNBOAT_BUILD_DOMAIN":                 "runboat.odoo-community.org",
		"RUNBOAT_BUILD_ENV":                    `{"PGHOST": "postgres14.runboat-builds-db", "PGPORT": "5432", "PGUSER": "runboat-build"}`,
		"RUNBOAT_BUILD_SECRET_ENV":             `{"PGPASSWORD": "pg-SECRET-4"}`,
		"RUNBOAT_BUILD_TEMPLATE_VARS":          `{"storageClassName": "standard"}`,
		"RUNBOAT_BUILD_DEFAULT_KUBEFILES_PATH": "kubefiles/odoo",
		"RUNBOAT_GITHUB_TOKEN":                 "tok-SECRET-1",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET":        "whs-SECRET-2",
		"RUNBOAT_BASE_URL":                     "https://runboat.odoo-community.org",
		"RUNBOAT_MAX_INITIALIZING":             "3",
		"RUNBOAT_MAX_STARTED":                  "7",
		"RUNBOAT_MAX_DEPLOYED":                 "11",
		"RUNBOAT_DISABLE_COMMIT_STATUSES":      "True",
		"RUNBOAT_DEPLOYMENT_RESOURCE_TYPES":    "deployment, service,ingress ,pvc",
		"RUNBOAT_NO_CLEANUP_JOB":               "yes",
		// Settings of the Python runboat this project has no use for.
		"RUNBOAT_LOG_CONFIG":             "log-config.yaml",
		"RUNBOAT_ADDITIONAL_FOOTER_HTML": "<p>hi</p>",
	}
}

// secrets are the secret values of pythonEnv.
var secrets = []string{"tok-SECRET-1", "whs-SECRET-2", "pwd-SECRET-3", "pg-SECRET-4", "rule-SECRET-5", "zz-SECRET-6"}

// minimalEnv has only what has no default.
func minimalEnv() map[string]string {
	return map[string]string{
		"RUNBOAT_REPOS":                 `[{"repo": "^oca/.*", "branch": "^15.0$", "builds": [{"image": "odoo:15"}]}]`,
		"RUNBOAT_BUILD_NAMESPACE":       "builds",
		"RUNBOAT_BUILD_DOMAIN":          "example.com",
		"RUNBOAT_GITHUB_WEBHOOK_SECRET": "s",
		"RUNBOAT_API_ADMIN_USER":        "admin",
		"RUNBOAT_API_ADMIN_PASSWD":      "p",
	}
}

func with(env map[string]string, kv ...string) map[string]string {
	out := maps.Clone(env)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func without(env map[string]string, keys ...string) map[string]string {
	out := maps.Clone(env)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func mustLoad(t *testing.T, env map[string]string) full {
	t.Helper()
	var cfg full
	if err := Load(env, &cfg); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// fieldErrors returns the FieldErrors in err, in order.
func fieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		switch u := err.(type) { //nolint:errorlint // walking the tree, not matching
		case *FieldError:
			out = append(out, u)
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

func TestLoadPythonConfiguration(t *testing.T) {
	cfg := mustLoad(t, pythonEnv())

	if got := len(cfg.Repos); got != 3 {
		t.Fatalf("%d repository rules, want 3", got)
	}
	if p, b := cfg.Repos[1].RepoPattern(), cfg.Repos[1].BranchPattern(); p != "^oca/mis-builder$" || b != "^16.0$" {
		t.Errorf("rule 1 patterns = %q, %q", p, b)
	}
	r2 := cfg.Repos[2].Builds[0]
	if r2.Image != "ghcr.io/oca/oca-ci/py3.10-odoo17.0:latest" ||
		!reflect.DeepEqual(r2.Env, map[string]string{"ODOO_VERSION": "17.0", "PGHOST": "pg17"}) ||
		r2.SecretEnv["PGPASSWORD"].Value() != "rule-SECRET-5" ||
		!reflect.DeepEqual(r2.TemplateVars, map[string]string{"storageClassName": "fast"}) {
		t.Errorf("rule 2 build = %#v", r2)
	}
	if cfg.Namespace != "runboat-builds" || cfg.Domain != "runboat.odoo-community.org" {
		t.Errorf("namespace, domain = %q, %q", cfg.Namespace, cfg.Domain)
	}
	if !reflect.DeepEqual(map[string]string(cfg.Builds.Env), map[string]string{"PGHOST": "postgres14.runboat-builds-db", "PGPORT": "5432", "PGUSER": "runboat-build"}) {
		t.Errorf("build env = %v", cfg.Builds.Env)
	}
	if got := cfg.Builds.SecretEnv.Values(); !reflect.DeepEqual(got, map[string]string{"PGPASSWORD": "pg-SECRET-4"}) {
		t.Errorf("build secret env keys = %v", cfg.Builds.SecretEnv.Keys())
	}
	if !reflect.DeepEqual(map[string]string(cfg.TemplateVars), map[string]string{"storageClassName": "standard"}) {
		t.Errorf("template vars = %v", cfg.TemplateVars)
	}
	if cfg.DefaultKubefilesPath != "kubefiles/odoo" {
		t.Errorf("default kubefiles path = %q", cfg.DefaultKubefilesPath)
	}
	if cfg.Quotas != (Quotas{MaxInitializing: 3, MaxStarted: 7, MaxDeployed: 11}) {
		t.Errorf("quotas = %+v", cfg.Quotas)
	}
	if cfg.Token.Value() != "tok-SECRET-1" || !cfg.DisableCommitStatuses || cfg.BaseURL != "https://runboat.odoo-community.org" {
		t.Errorf("github = token set %v, disable %v, base URL %q", cfg.Token != "", cfg.DisableCommitStatuses, cfg.BaseURL)
	}
	if cfg.Webhook.Secret.Value() != "whs-SECRET-2" || cfg.Insecure {
		t.Errorf("webhook = secret set %v, insecure %v", cfg.Webhook.Secret != "", cfg.Insecure)
	}
	if want := (ResourceTypes{"deployment", "service", "ingress", "pvc"}); !slices.Equal(cfg.DeploymentResourceTypes, want) || !cfg.NoCleanupJob {
		t.Errorf("cleanup = %q, %v; want %q, true", cfg.DeploymentResourceTypes, cfg.NoCleanupJob, want)
	}
	if cfg.AdminUser != "admin" || cfg.AdminPasswd.Value() != "pwd-SECRET-3" {
		t.Errorf("api user = %q, password set %v", cfg.AdminUser, cfg.AdminPasswd != "")
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg := mustLoad(t, minimalEnv())
	if cfg.Quotas != (Quotas{MaxInitializing: 2, MaxStarted: 6, MaxDeployed: 10}) {
		t.Errorf("quotas = %+v, want runboat's 2, 6, 10", cfg.Quotas)
	}
	if cfg.BaseURL != "http://localhost:8000" {
		t.Errorf("base URL = %q", cfg.BaseURL)
	}
	if want := (ResourceTypes{"deployment", "service", "ingress", "configmap", "secret", "pvc", "job"}); !slices.Equal(cfg.DeploymentResourceTypes, want) {
		t.Errorf("resource types = %q, want %q", cfg.DeploymentResourceTypes, want)
	}
	if cfg.DisableCommitStatuses || cfg.NoCleanupJob || cfg.Insecure {
		t.Errorf("booleans default to true: %+v %+v %+v", cfg.GitHub, cfg.Cleanup, cfg.Webhook)
	}
	if len(cfg.Builds.Env) != 0 || len(cfg.Builds.SecretEnv) != 0 || len(cfg.TemplateVars) != 0 || cfg.DefaultKubefilesPath != "" || cfg.Token != "" {
		t.Errorf("optional settings not empty: %+v", cfg.Builds)
	}
}

func TestLoadEmptyValueTakesDefault(t *testing.T) {
	cfg := mustLoad(t, with(minimalEnv(), "RUNBOAT_MAX_STARTED", "", "RUNBOAT_BASE_URL", ""))
	if cfg.MaxStarted != 6 || cfg.BaseURL != "http://localhost:8000" {
		t.Errorf("empty values: max started %d, base URL %q; want the defaults", cfg.MaxStarted, cfg.BaseURL)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	env := map[string]string{
		"RUNBOAT_REPOS": `[
			{"repo": "(oca", "branch": "^15.0$", "builds": [{"image": "odoo:15"}]},
			{"repo": "^oca/.*", "branch": "^16.0$", "builds": []},
			{"repo": "^oca/.*", "branch": "^17.0$", "builds": [{"image": ""}]}
		]`,
		"RUNBOAT_BUILD_NAMESPACE":           "Runboat_Builds",
		"RUNBOAT_BUILD_DOMAIN":              "*.example.com",
		"RUNBOAT_BUILD_ENV":                 `{"A": 1}`,
		"RUNBOAT_MAX_INITIALIZING":          "0",
		"RUNBOAT_MAX_STARTED":               "-1",
		"RUNBOAT_MAX_DEPLOYED":              "ten",
		"RUNBOAT_BASE_URL":                  "ftp://example.com",
		"RUNBOAT_DISABLE_COMMIT_STATUSES":   "maybe",
		"RUNBOAT_DEPLOYMENT_RESOURCE_TYPES": "deployment,,pvc",
		"RUNBOAT_API_ADMIN_PASSWD":          "",
	}
	var cfg full
	err := Load(env, &cfg)
	if err == nil {
		t.Fatal("Load: no error")
	}
	want := []struct{ v, msg string }{
		{"RUNBOAT_REPOS", `rule 0 (repo "(oca", branch "^15.0$"): repo: invalid regular expression "(oca": missing closing )`},
		{"RUNBOAT_REPOS", `rule 1 (repo "^oca/.*", branch "^16.0$"): builds: want exactly one build, got 0`},
		{"RUNBOAT_REPOS", `rule 2 (repo "^oca/.*", branch "^17.0$"): builds[0]: image: required`},
		{"RUNBOAT_BUILD_NAMESPACE", `invalid namespace "Runboat_Builds"`},
		{"RUNBOAT_BUILD_DOMAIN", `invalid domain "*.example.com"`},
		{"RUNBOAT_BUILD_ENV", "invalid value: want a JSON object of strings"},
		{"RUNBOAT_MAX_INITIALIZING", "must be >= 1, got 0"},
		{"RUNBOAT_MAX_STARTED", "must be >= 1, got -1"},
		{"RUNBOAT_MAX_DEPLOYED", "invalid value"},
		{"RUNBOAT_BASE_URL", "want an http:// or https:// URL"},
		{"RUNBOAT_DISABLE_COMMIT_STATUSES", "invalid value: want a boolean"},
		{"RUNBOAT_DEPLOYMENT_RESOURCE_TYPES", `entry 1: invalid resource type ""`},
		{"RUNBOAT_GITHUB_WEBHOOK_SECRET", "RUNBOAT_GITHUB_WEBHOOK_INSECURE=true"},
		{"RUNBOAT_API_ADMIN_USER", "required, not set"},
		{"RUNBOAT_API_ADMIN_PASSWD", "required"},
	}
	got := fieldErrors(err)
	for _, w := range want {
		found := false
		for _, g := range got {
			if g.Var == w.v && strings.Contains(g.Err.Error(), w.msg) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no problem %s: %q in:\n%v", w.v, w.msg, err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d problems reported, want %d:\n%v", len(got), len(want), err)
	}
	for _, g := range got {
		if !strings.Contains(err.Error(), g.Var+": ") {
			t.Errorf("error text does not name %s:\n%v", g.Var, err)
		}
	}
}

func TestLoadParseErrorReportedOnce(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
	}{
		{"int", "RUNBOAT_MAX_STARTED", "six"},
		{"repos JSON", "RUNBOAT_REPOS", "not json"},
		{"repos not a list", "RUNBOAT_REPOS", `{"repo": "x"}`},
		{"bool", "RUNBOAT_GITHUB_WEBHOOK_INSECURE", "sure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg full
			err := Load(with(minimalEnv(), tc.key, tc.value), &cfg)
			got := fieldErrors(err)
			if len(got) != 1 || got[0].Var != tc.key {
				t.Errorf("Load with %s=%q: got %v, want one problem naming %s", tc.key, tc.value, err, tc.key)
			}
		})
	}
}

func TestRepos(t *testing.T) {
	for _, tc := range []struct {
		name  string
		repos string
		want  []string // one substring per problem; none when valid
	}{
		{"python readme", `[{"repo": "^oca/.*", "branch": "^15.0$", "builds": [{"image": "ghcr.io/oca/oca-ci/py3.8-odoo15.0:latest", "kubefiles_path": "kubefiles/custom"}]}]`, nil},
		{"empty list", `[]`, []string{"must list at least one repository rule"}},
		{"null", `null`, []string{"must list at least one repository rule"}},
		{"empty", ``, []string{"must list at least one repository rule"}},
		{"unset", "-", []string{"required, not set"}},
		{"not JSON", `[{"repo": ]`, []string{"want a JSON list of repository rules: invalid JSON at byte"}},
		{"not a list", `"^oca/.*"`, []string{"want a JSON list of repository rules: unexpected JSON string"}},
		{"missing keys", `[{"builds": [{"image": "x"}]}]`, []string{`rule 0: missing "repo", "branch"`}},
		{"missing builds", `[{"repo": "a", "branch": "b"}]`, []string{`rule 0: missing "builds"`}},
		{"bad type", `[{"repo": 1, "branch": "b", "builds": []}]`, []string{"rule 0: want an object"}},
		{"two builds", `[{"repo": "a", "branch": "b", "builds": [{"image": "x"}, {"image": "y"}]}]`, []string{"want exactly one build, got 2"}},
		{"bad regexes", `[{"repo": "a[", "branch": "(?<=x)y", "builds": [{"image": "x"}]}]`, []string{"repo: invalid regular expression", "branch: invalid regular expression"}},
		{"bad build", `[{"repo": "a", "branch": "b", "builds": [{"image": "odoo 16", "env": {"A B": "x"}, "secret_env": {"": "v"}, "template_vars": {"a/b": "x"}}]}]`,
			[]string{`image "odoo 16": must not contain spaces`, `env: invalid name "A B"`, `secret_env: invalid name ""`, `template_vars: invalid name "a/b"`}},
		{"number in env", `[{"repo": "a", "branch": "b", "builds": [{"image": "x", "env": {"A": 1}}]}]`, []string{"rule 0: want an object"}},
		{"shape and regex problems at once", `[{"repo": "(", "branch": "b", "builds": [{"image": "x"}]}, {"repo": "a"}]`,
			[]string{`rule 1: missing "branch", "builds"`, `rule 0 (repo "(", branch "b"): repo: invalid regular expression`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg struct{ Builds }
			env := with(minimalEnv(), "RUNBOAT_REPOS", tc.repos)
			if tc.repos == "-" {
				env = without(env, "RUNBOAT_REPOS")
			}
			err := Load(env, &cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			got := fieldErrors(err)
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d: %v", len(got), len(tc.want), err)
			}
			for i, w := range tc.want {
				if got[i].Var != "RUNBOAT_REPOS" || !strings.Contains(got[i].Error(), w) {
					t.Errorf("problem %d = %q, want RUNBOAT_REPOS and %q", i, got[i], w)
				}
			}
		})
	}
}

// TestMatchAsPythonRunboat follows the Python runboat's settings tests
// (tests/test_settings.py) over pythonEnv.
func TestMatchAsPythonRunboat(t *testing.T) {
	cfg := mustLoad(t, pythonEnv())
	for _, tc := range []struct {
		repo, branch string
		image        string // empty: not supported
		kubefiles    string
	}{
		{"OCA/mis-builder", "15.0", "ghcr.io/oca/oca-ci/py3.8-odoo15.0:latest", "kubefiles/odoo"},
		{"oca/mis-builder", "15.0", "ghcr.io/oca/oca-ci/py3.8-odoo15.0:latest", "kubefiles/odoo"},
		{"acsone/mis-builder", "15.0", "", ""},
		{"OCA/mis-builder", "15.0-stuff", "", ""},
		{"OCA/mis-builder", "16.0", "ghcr.io/oca/oca-ci/py3.10-odoo16.0:latest", "kubefiles/custom"},
		{"OCA/mis-builder-2", "16.0", "", ""},
		{"OCA/server-env", "17.0", "ghcr.io/oca/oca-ci/py3.10-odoo17.0:latest", "kubefiles/odoo"},
		{"OCA/server-env", "15.0", "", ""},
		// "." is any character, as in Python.
		{"OCA/mis-builder", "15x0", "ghcr.io/oca/oca-ci/py3.8-odoo15.0:latest", "kubefiles/odoo"},
	} {
		bs, ok := cfg.Match(tc.repo, tc.branch)
		if ok != (tc.image != "") || bs.Image != tc.image {
			t.Errorf("Match(%q, %q) = %q, %v; want %q", tc.repo, tc.branch, bs.Image, ok, tc.image)
			continue
		}
		if ok && cfg.KubefilesPath(bs) != tc.kubefiles {
			t.Errorf("KubefilesPath for %q, %q = %q, want %q", tc.repo, tc.branch, cfg.KubefilesPath(bs), tc.kubefiles)
		}
		if s := cfg.Supported(tc.repo, tc.branch); s != ok {
			t.Errorf("Supported(%q, %q) = %v, Match says %v", tc.repo, tc.branch, s, ok)
		}
	}
}

// TestMatchSemantics checks Python's re.match: anchored at the start, not
// at the end; the repository ignores case, the branch does not.
func TestMatchSemantics(t *testing.T) {
	for _, tc := range []struct {
		repoRE, branchRE string
		repo, branch     string
		want             bool
	}{
		{"oca/mis-builder", "15.0", "oca/mis-builder", "15.0", true},
		{"oca/mis-builder", "15.0", "oca/mis-builder-extra", "15.0-stuff", true},
		{"oca/mis-builder", "15.0", "xoca/mis-builder", "15.0", false},
		{"oca/mis-builder", "15.0", "oca/mis-builder", "x15.0", false},
		{"OCA/Mis-Builder", "main", "oca/MIS-BUILDER", "main", true},
		{"oca/x", "main", "oca/x", "Main", false},
		{"oca/x", "(?i)main", "oca/x", "MAIN", true},
		{"oca/x", "16.0|17.0", "oca/x", "17.0", true},
		{"oca/x", "16.0|17.0", "oca/x", "x17.0", false},
		{"a|oca/x", ".*", "oca/x", "main", true},
		{"a|b", ".*", "xb", "main", false},
		{"", "", "anything/at-all", "any", true},
		{"^oca/.*", "^(15|16)\\.0$", "oca/x", "16.0", true},
		{"^oca/.*", "^(15|16)\\.0$", "oca/x", "16x0", false},
		{"^oca/.*", "^feature/.*", "oca/x", "feature/a\nb", true},
	} {
		r, err := NewRepoRule(tc.repoRE, tc.branchRE, BuildSettings{Image: "x"})
		if err != nil {
			t.Fatalf("NewRepoRule(%q, %q): %v", tc.repoRE, tc.branchRE, err)
		}
		if got := r.Matches(tc.repo, tc.branch); got != tc.want {
			t.Errorf("rule (%q, %q) matches (%q, %q) = %v, want %v", tc.repoRE, tc.branchRE, tc.repo, tc.branch, got, tc.want)
		}
	}
}

func TestMatchFirstRuleWins(t *testing.T) {
	b := Builds{Repos: RepoRules{
		MustRepoRule("^oca/x$", "^16.0$", BuildSettings{Image: "first"}),
		MustRepoRule("^oca/.*", ".*", BuildSettings{Image: "second"}),
		MustRepoRule("^oca/.*", "^16.0$", BuildSettings{Image: "third"}),
	}}
	for _, tc := range []struct{ repo, branch, want string }{
		{"oca/x", "16.0", "first"},
		{"oca/x", "17.0", "second"},
		{"oca/y", "16.0", "second"},
	} {
		if bs, ok := b.Match(tc.repo, tc.branch); !ok || bs.Image != tc.want {
			t.Errorf("Match(%q, %q) = %q, %v; want %q", tc.repo, tc.branch, bs.Image, ok, tc.want)
		}
	}
	if _, ok := b.Match("acsone/x", "16.0"); ok {
		t.Error("Match of an unsupported repo: ok")
	}
}

func TestRepoRuleNotCompiled(t *testing.T) {
	var r RepoRule
	r.Builds = []BuildSettings{{Image: "x"}}
	if r.Matches("oca/x", "main") {
		t.Error("a rule not compiled matches")
	}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "not compiled") {
		t.Errorf("Validate of a rule not compiled = %v", err)
	}
	for _, p := range []string{"a)|(b", "(a", "a\\", "(?<=a)b", "x{2,1}"} {
		if _, err := NewRepoRule(p, "main"); err == nil {
			t.Errorf("NewRepoRule(%q): no error", p)
		}
		if _, err := NewRepoRule("oca/x", p); err == nil {
			t.Errorf("NewRepoRule with branch %q: no error", p)
		}
	}
	if _, err := NewRepoRule("(", ")"); err == nil || !strings.Contains(err.Error(), "repo: ") || !strings.Contains(err.Error(), "branch: ") {
		t.Errorf("NewRepoRule with two bad expressions = %v, want both named", err)
	}
}

func TestRepoRuleCompiledOnce(t *testing.T) {
	cfg := mustLoad(t, pythonEnv())
	r := cfg.Repos[0]
	if r.repo == nil || r.branch == nil {
		t.Fatal("loaded rule holds no compiled expressions")
	}
	before := r.repo
	cfg.Match("oca/mis-builder", "15.0")
	if cfg.Repos[0].repo != before {
		t.Error("Match recompiled the expressions")
	}
}

func TestEffective(t *testing.T) {
	cfg := mustLoad(t, pythonEnv())
	bs, ok := cfg.Match("oca/server-env", "17.0")
	if !ok {
		t.Fatal("no match")
	}
	e := cfg.Effective(bs)
	if e.KubefilesPath != "kubefiles/odoo" || e.Image != bs.Image {
		t.Errorf("effective kubefiles path, image = %q, %q", e.KubefilesPath, e.Image)
	}
	if want := map[string]string{"PGHOST": "pg17", "PGPORT": "5432", "PGUSER": "runboat-build", "ODOO_VERSION": "17.0"}; !reflect.DeepEqual(e.Env, want) {
		t.Errorf("effective env = %v, want %v", e.Env, want)
	}
	if got := e.SecretEnv.Values(); !reflect.DeepEqual(got, map[string]string{"PGPASSWORD": "rule-SECRET-5"}) {
		t.Errorf("effective secret env keys = %v, want the rule's value to win", e.SecretEnv.Keys())
	}
	if want := map[string]string{"storageClassName": "fast"}; !reflect.DeepEqual(e.TemplateVars, want) {
		t.Errorf("effective template vars = %v, want %v", e.TemplateVars, want)
	}
	e.Env["PGHOST"] = "changed"
	e.SecretEnv["NEW"] = "x"
	if cfg.Builds.Env["PGHOST"] != "postgres14.runboat-builds-db" || bs.Env["PGHOST"] != "pg17" || len(cfg.Builds.SecretEnv) != 1 {
		t.Error("changing the effective maps changed the configuration")
	}

	// A rule without maps gets the global ones.
	bs15, _ := cfg.Match("oca/mis-builder", "16.0")
	e15 := cfg.Effective(bs15)
	if e15.KubefilesPath != "kubefiles/custom" || e15.Env["PGPORT"] != "5432" || e15.TemplateVars["storageClassName"] != "standard" {
		t.Errorf("effective settings of a plain rule = %+v", e15)
	}
}

func TestBools(t *testing.T) {
	for _, v := range []string{"1", "true", "True", "TRUE", "t", "yes", "Yes", "y", "on", "ON"} {
		cfg := mustLoad(t, with(minimalEnv(), "RUNBOAT_NO_CLEANUP_JOB", v))
		if !cfg.NoCleanupJob {
			t.Errorf("%q read as false", v)
		}
	}
	for _, v := range []string{"0", "false", "False", "f", "no", "n", "off", "OFF"} {
		cfg := mustLoad(t, with(minimalEnv(), "RUNBOAT_NO_CLEANUP_JOB", v))
		if cfg.NoCleanupJob {
			t.Errorf("%q read as true", v)
		}
	}
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // empty: valid
	}{
		{"http://localhost:8000", ""},
		{"https://runboat.example.com/prefix", ""},
		{"localhost:8000", "want an http:// or https:// URL"},
		{"ftp://example.com", "want an http:// or https:// URL"},
		{"https://", "with a host"},
		{"http://exa mple.com", "invalid URL"},
		{"https://user:pw-SECRET@example.com", "must not hold credentials"},
	} {
		var cfg struct{ GitHub }
		err := Load(map[string]string{"RUNBOAT_BASE_URL": tc.url}, &cfg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("BASE_URL %q: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "RUNBOAT_BASE_URL: ") || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("BASE_URL %q: error %v, want %q", tc.url, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "SECRET"):
			t.Errorf("BASE_URL error shows the credentials: %v", err)
		}
	}
}

func TestWebhookSecretRequiredUnlessInsecure(t *testing.T) {
	var cfg struct{ Webhook }
	err := Load(map[string]string{}, &cfg)
	if got := fieldErrors(err); len(got) != 1 || got[0].Var != "RUNBOAT_GITHUB_WEBHOOK_SECRET" {
		t.Errorf("no webhook secret: %v, want one problem naming RUNBOAT_GITHUB_WEBHOOK_SECRET", err)
	}
	if err := Load(map[string]string{"RUNBOAT_GITHUB_WEBHOOK_INSECURE": "true"}, &cfg); err != nil {
		t.Errorf("insecure without secret: %v", err)
	}
	if !cfg.Insecure {
		t.Error("insecure not read")
	}
	if err := Load(map[string]string{"RUNBOAT_GITHUB_WEBHOOK_INSECURE": "false"}, &cfg); err == nil {
		t.Error("INSECURE=false without a secret: no error")
	}
}

func TestResourceTypes(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  ResourceTypes
		err   string
	}{
		{"deployment", ResourceTypes{"deployment"}, ""},
		{" deployment , ingresses.networking.k8s.io,PVC ", ResourceTypes{"deployment", "ingresses.networking.k8s.io", "PVC"}, ""},
		{"deployment,", nil, `entry 1: invalid resource type ""`},
		{"deploy ment", nil, `entry 0: invalid resource type "deploy ment"`},
		{"-pvc", nil, `entry 0: invalid resource type "-pvc"`},
	} {
		var cfg struct{ Cleanup }
		err := Load(map[string]string{"RUNBOAT_DEPLOYMENT_RESOURCE_TYPES": tc.value}, &cfg)
		if tc.err == "" {
			if err != nil || !slices.Equal(cfg.DeploymentResourceTypes, tc.want) {
				t.Errorf("%q: %q, %v; want %q", tc.value, cfg.DeploymentResourceTypes, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "RUNBOAT_DEPLOYMENT_RESOURCE_TYPES: "+tc.err) {
			t.Errorf("%q: error %v, want %q", tc.value, err, tc.err)
		}
	}
	if err := (Cleanup{}).Validate(); err == nil {
		t.Error("no resource types: no error")
	}
	if s := (ResourceTypes{"a", "b"}).String(); s != "a,b" {
		t.Errorf("String = %q", s)
	}
}

func TestQuotas(t *testing.T) {
	for _, tc := range []struct {
		q    Quotas
		want []string
	}{
		{Quotas{1, 1, 1}, nil},
		{Quotas{20, 150, 7000}, nil},
		{Quotas{0, 6, 10}, []string{"RUNBOAT_MAX_INITIALIZING: must be >= 1, got 0"}},
		{Quotas{-1, -2, -3}, []string{"RUNBOAT_MAX_INITIALIZING: must be >= 1, got -1", "RUNBOAT_MAX_STARTED: must be >= 1, got -2", "RUNBOAT_MAX_DEPLOYED: must be >= 1, got -3"}},
	} {
		got := fieldErrors(tc.q.Validate())
		if len(got) != len(tc.want) {
			t.Errorf("%+v: %d problems, want %d", tc.q, len(got), len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if got[i].Error() != w {
				t.Errorf("%+v: problem %d = %q, want %q", tc.q, i, got[i], w)
			}
		}
	}
}

func TestBuildsValidate(t *testing.T) {
	rule := MustRepoRule("^oca/.*", "^16.0$", BuildSettings{Image: "x"})
	for _, tc := range []struct {
		name string
		b    Builds
		want []string
	}{
		{"valid", Builds{Repos: RepoRules{rule}, Namespace: "builds", Domain: "b.example.com"}, nil},
		{"nothing", Builds{}, []string{"RUNBOAT_REPOS: must list", "RUNBOAT_BUILD_NAMESPACE: required", "RUNBOAT_BUILD_DOMAIN: required"}},
		{"long domain", Builds{Repos: RepoRules{rule}, Namespace: "builds", Domain: strings.Repeat("a.", 95) + "com"},
			[]string{"RUNBOAT_BUILD_DOMAIN: longer than 189 bytes"}},
		{"bad keys", Builds{Repos: RepoRules{rule}, Namespace: "builds", Domain: "example.com",
			Env: StringMap{"A=B": "x"}, SecretEnv: SecretMap{"": "s"}, TemplateVars: StringMap{"a b": "x"}},
			[]string{`RUNBOAT_BUILD_ENV: keys: invalid name "A=B"`, `RUNBOAT_BUILD_SECRET_ENV: keys: invalid name ""`, `RUNBOAT_BUILD_TEMPLATE_VARS: keys: invalid name "a b"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fieldErrors(tc.b.Validate())
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d: %v", len(got), len(tc.want), tc.b.Validate())
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i].Error(), w) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got[i], w)
				}
			}
		})
	}
}

func TestAPI(t *testing.T) {
	var cfg struct{ API }
	err := Load(map[string]string{"RUNBOAT_API_ADMIN_USER": "", "RUNBOAT_API_ADMIN_PASSWD": "x"}, &cfg)
	if got := fieldErrors(err); len(got) != 1 || got[0].Error() != "RUNBOAT_API_ADMIN_USER: required" {
		t.Errorf("empty admin user: %v", err)
	}
}

func TestLoadNested(t *testing.T) {
	var cfg struct {
		Q       Quotas
		C       *Cleanup
		Skipped *Quotas
		Own     struct {
			Name string `env:"OWN_NAME"`
		}
	}
	cfg.C = &Cleanup{}
	err := Load(map[string]string{
		"RUNBOAT_MAX_STARTED":               "0",
		"RUNBOAT_DEPLOYMENT_RESOURCE_TYPES": "a,",
		"RUNBOAT_OWN_NAME":                  "n",
	}, &cfg)
	got := fieldErrors(err)
	if len(got) != 2 || got[0].Var != "RUNBOAT_MAX_STARTED" || got[1].Var != "RUNBOAT_DEPLOYMENT_RESOURCE_TYPES" {
		t.Errorf("nested parts: %v", err)
	}
	if cfg.Own.Name != "n" {
		t.Errorf("own field = %q", cfg.Own.Name)
	}
}

func TestLoadNeedsStructPointer(t *testing.T) {
	var q Quotas
	for _, cfg := range []any{q, nil, new(int), (*Quotas)(nil)} {
		if err := Load(map[string]string{}, cfg); err == nil {
			t.Errorf("Load(%T): no error", cfg)
		}
	}
}

func TestLoadNilEnvironIsEmpty(t *testing.T) {
	t.Setenv("RUNBOAT_MAX_STARTED", "0")
	var cfg struct{ Quotas }
	if err := Load(nil, &cfg); err != nil {
		t.Fatalf("Load(nil): %v", err)
	}
	if cfg.MaxStarted != 6 {
		t.Errorf("Load(nil) read the process environment: max started %d", cfg.MaxStarted)
	}
	if err := Load(Environ(), &cfg); err == nil {
		t.Error("Load(Environ()) did not read the process environment")
	}
}
