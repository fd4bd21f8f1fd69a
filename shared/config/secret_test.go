package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestSecretFormats(t *testing.T) {
	s := Secret("hunter2")
	if s.Value() != "hunter2" || string(s) != "hunter2" {
		t.Fatalf("Value = %q", s.Value())
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(out, "hunter2") || strings.Contains(out, fmt.Sprintf("%x", "hunter2")) {
			t.Errorf("Sprintf(%q) = %q shows the secret", verb, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("Sprintf(%q) = %q, want the redaction", verb, out)
		}
	}
	if got := fmt.Sprint(s); got != redacted {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprintf("%#v", s); got != `config.Secret("[REDACTED]")` {
		t.Errorf("%%#v = %q", got)
	}
	b, err := json.Marshal(s)
	if err != nil || string(b) != `"[REDACTED]"` {
		t.Errorf("json = %s, %v", b, err)
	}
	txt, err := s.MarshalText()
	if err != nil || string(txt) != redacted {
		t.Errorf("text = %s, %v", txt, err)
	}
}

func TestSecretEmpty(t *testing.T) {
	var s Secret
	if got := fmt.Sprintf("%v|%s|%q", s, s, s); got != `||""` {
		t.Errorf("empty secret prints %q, want empty strings", got)
	}
	b, err := json.Marshal(s)
	if err != nil || string(b) != `""` {
		t.Errorf("json of empty secret = %s, %v", b, err)
	}
}

// assertNoSecret fails when out holds any secret of pythonEnv, and checks
// that out is not empty of everything either.
func assertNoSecret(t *testing.T, how, out string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s shows secret %q:\n%s", how, s, out)
		}
	}
	if !strings.Contains(out, "runboat-builds") {
		t.Errorf("%s does not show the configuration at all:\n%s", how, out)
	}
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	cfg := mustLoad(t, pythonEnv())
	// Make sure the secrets are there to be leaked.
	if cfg.Token.Value() != "tok-SECRET-1" || cfg.Builds.SecretEnv["PGPASSWORD"].Value() != "pg-SECRET-4" ||
		cfg.Repos[2].Builds[0].SecretEnv["PGPASSWORD"].Value() != "rule-SECRET-5" {
		t.Fatal("test configuration does not hold its secrets")
	}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoSecret(t, "Sprintf "+verb, fmt.Sprintf(verb, cfg))
		assertNoSecret(t, "Sprintf "+verb+" of a pointer", fmt.Sprintf(verb, &cfg))
	}
	assertNoSecret(t, "Sprint of the effective settings", fmt.Sprint(cfg.Effective(cfg.Repos[2].Builds[0]), cfg.Builds))

	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	assertNoSecret(t, "json", string(b))
	if !strings.Contains(string(b), `"repo":"^oca/mis-builder$"`) {
		t.Errorf("json does not show the rules: %s", b)
	}

	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Interface("config", cfg).Msg("interface")
	log.Info().Any("config", &cfg).Msg("any")
	log.Info().
		Object("builds", cfg.Builds).
		Object("quotas", cfg.Quotas).
		Object("github", cfg.GitHub).
		Object("webhook", cfg.Webhook).
		Object("cleanup", cfg.Cleanup).
		Object("api", cfg.API).
		Msg("objects")
	log.Info().
		Stringer("token", cfg.Token).
		Interface("secret_env", cfg.Builds.SecretEnv).
		Fields(map[string]any{"passwd": cfg.AdminPasswd, "webhook": cfg.Webhook.Secret}).
		Msg("fields")
	log.Info().EmbedObject(cfg.Builds).Msg("embedded")
	assertNoSecret(t, "zerolog", buf.String())
	for i, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("zerolog line %d is not JSON: %s", i, l)
		}
	}
	if got := strings.Count(buf.String(), redacted); got < 10 {
		t.Errorf("zerolog output holds %d redactions, want the secrets shown redacted:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), `"max_started":7`) || !strings.Contains(buf.String(), `"base_url":"https://runboat.odoo-community.org"`) {
		t.Errorf("zerolog objects do not show the settings:\n%s", buf.String())
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	for _, tc := range []struct{ key, value string }{
		{"RUNBOAT_BUILD_SECRET_ENV", `{"PGPASSWORD": zz-SECRET-6}`},
		{"RUNBOAT_BUILD_SECRET_ENV", `{"PGPASSWORD": ["pg-SECRET-4"]}`},
		{"RUNBOAT_BUILD_SECRET_ENV", `zz-SECRET-6`},
		{"RUNBOAT_REPOS", `[{"repo": "a", "branch": "b", "builds": [{"image": "x", "secret_env": {"K": zz-SECRET-6}}]}]`},
		{"RUNBOAT_REPOS", `[{"repo": "a", "branch": "b", "builds": [{"image": "x", "secret_env": {"K": 1, "L": "zz-SECRET-6"}}]}]`},
		{"RUNBOAT_REPOS", `[{"repo": "(", "branch": "b", "builds": [{"image": "", "secret_env": {"K": "zz-SECRET-6"}}]}]`},
		{"RUNBOAT_BASE_URL", "https://u:zz-SECRET-6@host"},
	} {
		var cfg full
		err := Load(with(pythonEnv(), tc.key, tc.value), &cfg)
		if err == nil {
			t.Errorf("%s=%s: no error", tc.key, tc.value)
			continue
		}
		if !strings.Contains(err.Error(), tc.key+": ") {
			t.Errorf("%s=%s: error does not name the variable: %v", tc.key, tc.value, err)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v", err), s) {
				t.Errorf("%s=%s: error shows %q: %v", tc.key, tc.value, s, err)
			}
		}
	}
}

func TestSecretMap(t *testing.T) {
	var m SecretMap
	if err := m.UnmarshalText([]byte(`{"B": "2", "A": "1"}`)); err != nil {
		t.Fatal(err)
	}
	if got := m.Keys(); len(got) != 2 || got[0] != "A" || got[1] != "B" {
		t.Errorf("Keys = %v", got)
	}
	if v := m.Values(); v["A"] != "1" || v["B"] != "2" {
		t.Errorf("Values = %v", v)
	}
	if SecretMap(nil).Values() != nil {
		t.Error("Values of nil map is not nil")
	}
	if err := m.UnmarshalText([]byte(`["x"]`)); err == nil {
		t.Error("a list read as a SecretMap")
	}
}

type secretsHolder struct {
	GitHub GitHub
	Builds Builds
	Other  *Webhook
}

// SecretValues finds every secret of a configuration, at any depth, once.
func TestSecretValues(t *testing.T) {
	rule := MustRepoRule("^a/b$", ".*", BuildSettings{Image: "x", SecretEnv: SecretMap{"A": "rule-secret"}})
	cfg := &secretsHolder{
		GitHub: GitHub{Token: "tok", APIURL: "https://api.github.com"},
		Builds: Builds{SecretEnv: SecretMap{"P": "pw", "Q": "pw"}, Repos: RepoRules{rule}, Namespace: "not-a-secret"},
		Other:  &Webhook{Secret: "hook"},
	}
	got := SecretValues(cfg)
	if want := []string{"hook", "pw", "rule-secret", "tok"}; !slices.Equal(got, want) {
		t.Errorf("SecretValues = %q, want %q", got, want)
	}
	if got := SecretValues(secretsHolder{}); len(got) != 0 {
		t.Errorf("SecretValues of nothing set = %q", got)
	}
}
