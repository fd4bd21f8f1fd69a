package reconciler

import (
	"context"
	"testing"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/testenv/githubdouble"
	jt "runboat.dev/shared/testenv/jobstest"
)

// TestDryRunGolden: what --dry-run prints for the case on a fake
// cluster, GitHub being its double.
func TestDryRunGolden(t *testing.T) {
	gh := githubdouble.New(t)
	gh.SetBranch("acme/app", "16.0", sha(14))
	gh.SetBranch("acme/app", "main", sha(20))
	gh.OpenPR("acme/app", githubdouble.PR{Number: 1, Base: "16.0", Head: sha(1)})
	gh.OpenPR("acme/app", githubdouble.PR{Number: 3, Base: "16.0", Head: sha(3)})
	gh.OpenPR("acme/app", githubdouble.PR{Number: 4, Base: "16.0", Head: sha(9)})
	gh.SetBranch("acme/down", "16.0", sha(30))
	bs := append(acceptance(), jt.Build(jt.Spec{N: 6, Repo: "acme/down", Branch: "16.0"}), jt.Build(jt.Spec{N: 7, Repo: "other/gone", Branch: "16.0"}))
	cfg := jt.Config(config.Quotas{MaxInitializing: 2, MaxStarted: 2, MaxDeployed: 10})
	cfg.Builds.Repos = settings().Builds.Repos
	cfg.GitHub = config.GitHub{Token: "t0ken", APIURL: gh.APIURL(), BaseURL: "https://runboat.example.org"}
	cfg.Reconciler = config.Reconciler{Undeploy: true, Deploy: true, MaxRequests: 2}
	env := jt.Env(t, cfg, Name, jt.T0, jt.Objects(bs)...)
	// The budget of two requests reads acme/app, then stops: acme/down is
	// left alone.
	out := jt.DryRun(t, env, Job{Transport: gh.Client().Transport})
	jt.Golden(t, "dry-run", out)
}

// The cache is saved, and read back, unless an action of the run failed:
// then the next run reads again what this one could not act on.
func TestSaveCache(t *testing.T) {
	ctx := context.Background()
	env := jt.Env(t, jt.Config(config.Quotas{MaxInitializing: 1, MaxStarted: 1, MaxDeployed: 1}), Name, jt.T0)
	c := github.PageCache{Pages: map[string]github.CachedPage{
		"repos/acme/app/branches?page=1&per_page=100": {ETag: `W/"1"`, Items: []github.CachedItem{{Name: "16.0", SHA: sha(1)}}},
	}}
	failed := &outcome{failed: true}
	save, err := newSaveCache(nil, c, failed)
	if err != nil || save == nil {
		t.Fatalf("newSaveCache: %v, %v", save, err)
	}
	if err := save.Apply(ctx, env); err != nil {
		t.Fatal(err)
	}
	if cm, _, err := loadCache(ctx, env); err != nil || cm != nil {
		t.Fatalf("saved after a failed action: %v, %v", cm, err)
	}
	save.out = &outcome{}
	if err := save.Apply(ctx, env); err != nil {
		t.Fatal(err)
	}
	cm, got, err := loadCache(ctx, env)
	if err != nil || cm == nil || got == nil || got.Pages["repos/acme/app/branches?page=1&per_page=100"].Items[0].SHA != sha(1) {
		t.Fatalf("read back %v, %v", got, err)
	}
	if again, err := newSaveCache(cm, c, &outcome{}); err != nil || again != nil {
		t.Errorf("the same cache is saved again: %v, %v", again, err)
	}
	if none, err := newSaveCache(nil, github.PageCache{}, &outcome{}); err != nil || none != nil {
		t.Errorf("an empty cache is saved where there was none: %v, %v", none, err)
	}
}
