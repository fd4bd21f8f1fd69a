package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzRepoRules: any RUNBOAT_REPOS text is refused with an error or read
// into rules that match without panicking, and that say the same once
// written back as JSON (secrets aside, redacted).
func FuzzRepoRules(f *testing.F) {
	f.Add(`[{"repo": "^oca/.*", "branch": "^15.0$", "builds": [{"image": "odoo:15"}]}]`)
	f.Add(`[{"repo": "(?i)^acme/", "branch": "", "builds": [{"image": "a:1", "kubefiles_path": "/k", "env": {"A": "1"}, "secret_env": {"S": "x"}, "template_vars": {"v": "w"}}]}]`)
	f.Add(`[{"repo": "[", "builds": []}]`)
	f.Add(`[]`)
	f.Add(`{"repo": "x"}`)
	f.Fuzz(func(t *testing.T, text string) {
		var rs RepoRules
		if err := rs.UnmarshalText([]byte(text)); err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		b := Builds{Repos: rs, Namespace: "ns", Domain: "example.test"}
		for _, repo := range []string{"oca/mis-builder", "acme/app", strings.Repeat("a", 100) + "/b"} {
			for _, branch := range []string{"15.0", "main", "x\"\n  evil: true"} {
				b.Supported(repo, branch)
			}
		}
		out, err := json.Marshal(rs)
		if err != nil {
			t.Fatalf("rules read from %q do not encode: %v", text, err)
		}
		if strings.Contains(text, "secret_env") {
			return // redacted: not read back the same
		}
		var again RepoRules
		if err := again.UnmarshalText(out); err != nil {
			t.Fatalf("rules written as %s do not read back: %v", out, err)
		}
	})
}
