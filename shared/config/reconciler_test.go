package config

import (
	"slices"
	"strings"
	"testing"
)

type reconcilerOnly struct {
	Reconciler
}

func TestReconcilerDefaults(t *testing.T) {
	var cfg reconcilerOnly
	if err := Load(nil, &cfg); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !cfg.Undeploy || !cfg.Deploy || len(cfg.Repos) != 0 || cfg.MaxRequests != 500 {
		t.Errorf("defaults = %+v", cfg.Reconciler)
	}
}

func TestReconcilerLoad(t *testing.T) {
	var cfg reconcilerOnly
	err := Load(map[string]string{
		"RUNBOAT_RECONCILE_UNDEPLOY":     "false",
		"RUNBOAT_RECONCILE_DEPLOY":       "no",
		"RUNBOAT_RECONCILE_REPOS":        " OCA/mis-builder, oca/server-tools ,",
		"RUNBOAT_RECONCILE_MAX_REQUESTS": "40",
	}, &cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Undeploy || cfg.Deploy || cfg.MaxRequests != 40 ||
		!slices.Equal(cfg.Repos, RepoList{"oca/mis-builder", "oca/server-tools"}) {
		t.Errorf("loaded = %+v", cfg.Reconciler)
	}
}

func TestReconcilerValidate(t *testing.T) {
	var cfg reconcilerOnly
	err := Load(map[string]string{
		"RUNBOAT_RECONCILE_REPOS":        "oca,oca/x/y,ok/fine",
		"RUNBOAT_RECONCILE_MAX_REQUESTS": "0",
	}, &cfg)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		`RUNBOAT_RECONCILE_REPOS: entry 0: want owner/name, got "oca"`,
		`RUNBOAT_RECONCILE_REPOS: entry 1: want owner/name, got "oca/x/y"`,
		"RUNBOAT_RECONCILE_MAX_REQUESTS: must be >= 1, got 0",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "ok/fine") {
		t.Errorf("a valid entry reported: %v", err)
	}
}

type githubOnly struct {
	GitHub
}

func TestGitHubAppValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ map[string]string
		want    []string
	}{
		{"token", map[string]string{"RUNBOAT_GITHUB_TOKEN": "t"}, nil},
		{"app", map[string]string{"RUNBOAT_GITHUB_APP_ID": "12", "RUNBOAT_GITHUB_PRIVATE_KEY": "pem", "RUNBOAT_GITHUB_INSTALLATION_ID": "3"}, nil},
		{"enterprise server", map[string]string{"RUNBOAT_GITHUB_API_URL": "https://ghes.example.com/api/v3/"}, nil},
		{"app without key", map[string]string{"RUNBOAT_GITHUB_APP_ID": "12"}, []string{"RUNBOAT_GITHUB_PRIVATE_KEY: required with RUNBOAT_GITHUB_APP_ID"}},
		{"key without app", map[string]string{"RUNBOAT_GITHUB_PRIVATE_KEY": "pem"}, []string{"RUNBOAT_GITHUB_APP_ID: required with RUNBOAT_GITHUB_PRIVATE_KEY"}},
		{"installation without app", map[string]string{"RUNBOAT_GITHUB_INSTALLATION_ID": "3"}, []string{"RUNBOAT_GITHUB_APP_ID: required with RUNBOAT_GITHUB_INSTALLATION_ID"}},
		{"both", map[string]string{"RUNBOAT_GITHUB_TOKEN": "t", "RUNBOAT_GITHUB_APP_ID": "12", "RUNBOAT_GITHUB_PRIVATE_KEY": "pem"}, []string{"RUNBOAT_GITHUB_TOKEN: set either a token or a GitHub App"}},
		{"bad API URL", map[string]string{"RUNBOAT_GITHUB_API_URL": "ftp://x"}, []string{"RUNBOAT_GITHUB_API_URL: want an http:// or https:// URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg githubOnly
			err := Load(tc.environ, &cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "pem") {
				t.Errorf("the key is in the error: %v", err)
			}
		})
	}
}
