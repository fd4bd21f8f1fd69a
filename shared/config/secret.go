package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// redacted is what a set Secret prints as.
const redacted = "[REDACTED]"

// Secret is a configuration value that must never be printed: every way of
// formatting or marshalling it (fmt verbs, JSON, text, zerolog) gives
// "[REDACTED]", or an empty string when it is not set. Convert it with
// string(s) or Value only where the value is actually used.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String returns the redaction, or "" when the secret is not set.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is used by %#v.
func (s Secret) GoString() string {
	return "config.Secret(" + strconv.Quote(s.String()) + ")"
}

// Format makes every fmt verb, including %d and %x, print the redaction
// rather than the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	if verb == 'q' {
		_, _ = f.Write([]byte(strconv.Quote(s.String())))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalJSON encodes the redaction.
func (s Secret) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(s.String())
	if err != nil {
		return nil, fmt.Errorf("failed to marshal secret: %w", err)
	}
	return b, nil
}

// MarshalText encodes the redaction.
func (s Secret) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// SecretMap holds secret values by name, such as RUNBOAT_BUILD_SECRET_ENV.
// It is read from a JSON object of strings; its keys are not secret.
type SecretMap map[string]Secret

// UnmarshalText reads a JSON object of strings. Its errors never quote the
// input.
func (m *SecretMap) UnmarshalText(text []byte) error { return unmarshalStrings(text, m) }

// Values returns the secrets as plain strings, for use where they are
// handed on (a build's Secret).
func (m SecretMap) Values() map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// Keys returns the names, sorted.
func (m SecretMap) Keys() []string {
	return slices.Sorted(maps.Keys(m))
}

// SecretValues returns the value of every Secret set in v (a configuration
// struct of this project, or a pointer to one), of every SecretMap entry,
// at any depth (the secret env of each repository rule included): what a
// log must never show, whatever quotes it back (logging.Redacting).
func SecretValues(v any) []string {
	var out []string
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch {
		case v.Type() == reflect.TypeFor[Secret]():
			if s := v.String(); s != "" {
				out = append(out, s)
			}
			return
		case v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case v.Kind() == reflect.Slice || v.Kind() == reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case v.Kind() == reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Value())
			}
		case v.Kind() == reflect.Struct && strings.HasPrefix(v.Type().PkgPath(), "runboat.dev/"):
			// Only this project's structs: the others (a compiled
			// expression, a time) hold no Secret.
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		}
	}
	walk(reflect.ValueOf(v))
	slices.Sort(out)
	return slices.Compact(out)
}
