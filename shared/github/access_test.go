package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"runboat.dev/shared/config"
	"runboat.dev/shared/github"
	"runboat.dev/shared/testenv/githubdouble"
)

func privateKey(t *testing.T) config.Secret {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return config.Secret(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// A GitHub App with no installation id finds the installation of each
// repository, mints one token per installation and keeps it for the next
// requests; the double refuses a token of another installation.
func TestAccessAsGitHubApp(t *testing.T) {
	d := githubdouble.New(t)
	d.EnableApp(4242, map[string]int64{"acme/app": 11, "other/lib": 22})
	d.SetBranch("acme/app", "main", sha(1))
	d.SetBranch("other/lib", "main", sha(2))
	cfg := config.GitHub{AppID: 4242, PrivateKey: privateKey(t), APIURL: d.APIURL()}
	access, err := github.NewAccess(cfg, d.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	if !access.App() || access.Anonymous() {
		t.Fatal("not an App's access")
	}
	c, err := access.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		for _, repo := range []string{"acme/app", "other/lib"} {
			owner, name, _ := strings.Cut(repo, "/")
			if _, _, err := c.Repositories.ListBranches(ctx, owner, name, nil); err != nil {
				t.Fatalf("%s: %v", repo, err)
			}
		}
	}
	if n := d.Minted(); n != 2 {
		t.Errorf("%d tokens minted, want one per installation (2)", n)
	}
	var jwt, tokens int
	for _, r := range d.Requests() {
		switch {
		case r.Code == http.StatusUnauthorized:
			t.Errorf("%s %s refused", r.Method, r.Path)
		case strings.HasPrefix(r.Auth, "Bearer "):
			jwt++
		case strings.HasPrefix(r.Auth, "token ghs_double"):
			tokens++
		}
	}
	// Two installations found and two tokens minted with the JWT; four
	// reads with the tokens.
	if jwt != 4 || tokens != 4 {
		t.Errorf("%d requests with the JWT and %d with a token, want 4 and 4", jwt, tokens)
	}

	// With the installation id, no look-up: commit statuses are posted
	// with its token.
	cfg.InstallationID = 11
	nop := zerolog.Nop()
	poster, err := github.PosterFor(cfg, &nop)
	if err != nil {
		t.Fatal(err)
	}
	if err := poster.PostStatus(ctx, "acme/app", sha(1), github.StatusPending, "https://runboat.example.org/builds/b1?live", "queued"); err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Requests() {
		if r.Operation == "apps/get-repo-installation" {
			t.Error("the installation was looked up though configured")
		}
	}
	if st := d.Statuses(); len(st) != 1 || st[0].State != "pending" || st[0].Context != github.StatusContext {
		t.Errorf("statuses %+v", st)
	}
}

func TestAccessErrors(t *testing.T) {
	if _, err := github.NewAccess(config.GitHub{AppID: 1, PrivateKey: "not a key"}, nil); err == nil || strings.Contains(err.Error(), "not a key") {
		t.Errorf("a bad key: %v", err)
	}
	a, err := github.NewAccess(config.GitHub{Token: "t"}, nil)
	if err != nil || a.App() || a.Anonymous() {
		t.Errorf("token access: %v", err)
	}
}
