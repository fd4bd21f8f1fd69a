package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"runboat.dev/shared/model"
)

// lines decodes the JSON lines written to buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewLevels(t *testing.T) {
	for _, tc := range []struct {
		level string
		// logged tells which of debug, info, warn are written.
		logged []string
	}{
		{"", []string{"info", "warn"}},
		{"debug", []string{"debug", "info", "warn"}},
		{"DEBUG", []string{"debug", "info", "warn"}},
		{"info", []string{"info", "warn"}},
		{"warn", []string{"warn"}},
		{"error", nil},
		{"disabled", nil},
	} {
		t.Run(tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, tc.level)
			if err != nil {
				t.Fatalf("New(%q): %v", tc.level, err)
			}
			l.Debug().Msg("debug")
			l.Info().Msg("info")
			l.Warn().Msg("warn")
			got := lines(t, &buf)
			if len(got) != len(tc.logged) {
				t.Fatalf("level %q: %d lines written, want %d: %s", tc.level, len(got), len(tc.logged), buf.String())
			}
			for i, m := range got {
				if m["message"] != tc.logged[i] || m["level"] != tc.logged[i] {
					t.Errorf("line %d = %v, want message and level %q", i, m, tc.logged[i])
				}
				if _, ok := m["time"]; !ok {
					t.Errorf("line %d has no time: %v", i, m)
				}
			}
		})
	}
}

func TestNewBadLevel(t *testing.T) {
	for _, level := range []string{"verbose", "1", "inf o"} {
		if _, err := New(&bytes.Buffer{}, level); err == nil {
			t.Errorf("New(%q): no error", level)
		} else if !strings.Contains(err.Error(), level) {
			t.Errorf("New(%q) error %q does not name the level", level, err)
		}
	}
}

func TestFromWithoutLogger(t *testing.T) {
	l := From(context.Background())
	if l == nil {
		t.Fatal("From(empty context) = nil")
	}
	if l.GetLevel() != zerolog.Disabled || l.Info().Enabled() {
		t.Error("From(empty context) is not disabled")
	}
	// Adding fields to it must not affect another call.
	l.UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Str("x", "y") })
	if From(context.Background()) == l {
		t.Error("From returns a shared logger")
	}
}

func TestIntoFrom(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "info")
	if err != nil {
		t.Fatal(err)
	}
	ctx := Into(context.Background(), l.With().Str("run", "r1").Logger())
	From(ctx).Info().Msg("hello")
	got := lines(t, &buf)
	if len(got) != 1 || got[0]["run"] != "r1" || got[0]["message"] != "hello" {
		t.Errorf("logged %v, want one line with run=r1 and message hello", got)
	}
}

func TestWithBuild(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name string
		ref  model.Ref
		want map[string]any
	}{
		{
			name: "pull request",
			ref:  model.Ref{Repo: "oca/mis-builder", TargetBranch: "16.0", PR: 12, Commit: sha},
			want: map[string]any{"build": "bx", "repo": "oca/mis-builder", "target_branch": "16.0", "pr": float64(12), "commit": sha},
		},
		{
			name: "branch",
			ref:  model.Ref{Repo: "oca/x", TargetBranch: "main", Commit: sha},
			want: map[string]any{"build": "bx", "repo": "oca/x", "target_branch": "main", "commit": sha},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, "info")
			if err != nil {
				t.Fatal(err)
			}
			ctx := WithBuild(Into(context.Background(), l), tc.ref, "bx")
			From(ctx).Info().Msg("m")
			got := lines(t, &buf)
			if len(got) != 1 {
				t.Fatalf("%d lines logged, want 1", len(got))
			}
			for k, v := range tc.want {
				if got[0][k] != v {
					t.Errorf("field %s = %v, want %v", k, got[0][k], v)
				}
			}
			if _, ok := got[0]["pr"]; ok && tc.ref.PR == 0 {
				t.Errorf("branch build logged with a pr field: %v", got[0])
			}
		})
	}
}

func TestWithBuildWithoutLogger(t *testing.T) {
	ctx := WithBuild(context.Background(), model.Ref{Repo: "oca/x"}, "bx")
	if From(ctx).Info().Enabled() {
		t.Error("WithBuild without a logger enabled logging")
	}
}

// A line quoting a secret, as it is or as JSON escapes it (a private key's
// new lines, quotes, HTML characters), reaches the output redacted; the rest
// of the line is kept.
func TestRedacting(t *testing.T) {
	key := "-----BEGIN KEY-----\nAB\"C<&>\n-----END KEY-----"
	token := "ghp_redactME123"
	var out strings.Builder
	logger := zerolog.New(Redacting(&out, token, key, ""))
	logger.Error().Err(errors.New("401 bad credentials: token "+token)).Str("key", key).Msg("GitHub said: " + token)
	got := out.String()
	for _, s := range []string{token, "AB\\\"C", "BEGIN KEY"} {
		if strings.Contains(got, s) {
			t.Errorf("the line holds %q: %s", s, got)
		}
	}
	if !strings.Contains(got, "401 bad credentials: token [REDACTED]") || !strings.Contains(got, `"key":"[REDACTED]"`) {
		t.Errorf("the line lost what is not secret: %s", got)
	}
	var plain strings.Builder
	if w := Redacting(&plain); w != io.Writer(&plain) {
		t.Error("with no secret, the writer is not the output itself")
	}
}
