// Package logging carries a zerolog logger in the context, with the fields
// that say which build a line is about. Into and From are the only way the
// logger travels: zerolog's own context key (zerolog.Ctx,
// Logger.WithContext) is another one, which lint refuses.
package logging

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"

	"runboat.dev/shared/model"
)

// New returns a logger writing JSON lines to w, with a timestamp, at the
// given level (trace, debug, info, warn, error, fatal, panic, disabled, in
// any case; empty means info).
func New(w io.Writer, level string) (zerolog.Logger, error) {
	lvl := zerolog.InfoLevel
	if s := strings.TrimSpace(level); s != "" {
		var err error
		lvl, err = parseLevel(s)
		if err != nil {
			return zerolog.Nop(), err
		}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// parseLevel accepts the level names only, not zerolog's numbers nor its
// empty "no level".
func parseLevel(s string) (zerolog.Level, error) {
	for _, l := range []zerolog.Level{
		zerolog.TraceLevel, zerolog.DebugLevel, zerolog.InfoLevel, zerolog.WarnLevel,
		zerolog.ErrorLevel, zerolog.FatalLevel, zerolog.PanicLevel, zerolog.Disabled,
	} {
		if strings.EqualFold(s, l.String()) {
			return l, nil
		}
	}
	return zerolog.NoLevel, fmt.Errorf("failed to parse log level %q: want trace, debug, info, warn, error, fatal, panic or disabled", s)
}

// ctxKey is the context key of the logger.
type ctxKey struct{}

// Into returns a copy of ctx carrying logger.
func Into(ctx context.Context, logger zerolog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, &logger)
}

// From returns the logger carried by ctx, or a disabled logger when there is
// none.
func From(ctx context.Context) *zerolog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*zerolog.Logger); ok && l != nil {
		return l
	}
	nop := zerolog.Nop()
	return &nop
}

// WithBuild returns a copy of ctx whose logger adds the fields of a build:
// build (its name), repo, target_branch, pr (only for a pull request) and
// commit.
func WithBuild(ctx context.Context, ref model.Ref, name string) context.Context {
	c := From(ctx).With().
		Str("build", name).
		Str("repo", ref.Repo).
		Str("target_branch", ref.TargetBranch)
	if ref.PR != 0 {
		c = c.Int("pr", ref.PR)
	}
	return Into(ctx, c.Str("commit", ref.Commit).Logger())
}

// Redacting returns a writer that writes to w what it is given with every
// secret replaced by [REDACTED], both as it is and as JSON escapes it:
// a log line that quotes a secret (an API's error echoing the credentials
// of the request, a value a template printed) never reaches w with it.
// Empty secrets are ignored. Each Write is redacted alone: zerolog writes
// one line per Write.
func Redacting(w io.Writer, secrets ...string) io.Writer {
	var pairs []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		pairs = append(pairs, s, redacted)
		for _, escaped := range jsonForms(s) {
			if escaped != s {
				pairs = append(pairs, escaped, redacted)
			}
		}
	}
	if len(pairs) == 0 {
		return w
	}
	return redactingWriter{w: w, r: strings.NewReplacer(pairs...)}
}

const redacted = "[REDACTED]"

// jsonForms are the ways JSON encoders write s inside a string: zerolog's
// and encoding/json's without HTML escaping, and encoding/json's default.
func jsonForms(s string) []string {
	var out []string
	for _, html := range []bool{false, true} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if err := enc.Encode(s); err != nil {
			continue // a string always encodes
		}
		q := strings.TrimSuffix(b.String(), "\n")
		out = append(out, q[1:len(q)-1])
	}
	return out
}

type redactingWriter struct {
	w io.Writer
	r *strings.Replacer
}

// Write writes p redacted, and says it wrote all of p: the caller's count
// is of what it gave.
func (rw redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(rw.w, rw.r.Replace(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
