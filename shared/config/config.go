// Package config reads the configuration of the runboat binaries from
// environment variables.
//
// The variables are the Python runboat's (prefix RUNBOAT_, same names, same
// JSON formats and defaults), so that an existing configuration works as it
// is. Each binary declares its own struct embedding the parts it needs
// (Builds, Quotas, GitHub, Webhook, Cleanup, API) and reads it with Load,
// which reports every problem at once, each naming its variable. Secret
// values are held as Secret and never printed.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v10"
)

// Prefix is the prefix of every variable.
const Prefix = "RUNBOAT_"

// Validator is implemented by the configuration parts. Load calls it on
// every part it finds in the struct it fills.
type Validator interface {
	Validate() error
}

// FieldError is a problem with one variable.
type FieldError struct {
	// Var is the full name of the variable, such as RUNBOAT_MAX_STARTED.
	Var string
	// Err says what is wrong. It never holds a secret value.
	Err error
}

// Error returns "VAR: problem".
func (e *FieldError) Error() string { return e.Var + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *FieldError) Unwrap() error { return e.Err }

// fieldErr makes a FieldError for the variable named Prefix+name.
func fieldErr(name, format string, args ...any) error {
	return &FieldError{Var: Prefix + name, Err: fmt.Errorf(format, args...)}
}

// Environ returns the process environment as a map, for Load.
func Environ() map[string]string {
	return env.ToMap(os.Environ())
}

// Load fills cfg, a pointer to a struct, from environ (variable name to
// value; nil is an empty environment, never the process one: pass Environ()
// for that), then calls Validate on every field of cfg, at any depth, that
// implements Validator (the parts of this package; a part's own fields are
// left to its Validate). cfg itself is not validated: checks across parts
// belong to the binary, after Load.
//
// Every problem is returned at once, joined, each as a *FieldError naming the
// variable. A variable that cannot be parsed is reported once, without the
// validation problems that follow from it.
func Load(environ map[string]string, cfg any) error {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("failed to load configuration: want a pointer to a struct, got %T", cfg)
	}
	if environ == nil {
		environ = map[string]string{}
	}
	var errs []error
	failed := map[string]bool{}
	err := env.ParseWithOptions(cfg, env.Options{
		Prefix:      Prefix,
		Environment: environ,
		FuncMap:     map[reflect.Type]env.ParserFunc{reflect.TypeFor[bool](): parseBool},
	})
	if err != nil {
		var agg env.AggregateError
		if !errors.As(err, &agg) {
			return fmt.Errorf("failed to load configuration: %w", err)
		}
		keys := envKeys(rv.Elem().Type())
		for _, e := range agg.Errors {
			for _, fe := range fromEnvError(e, keys) {
				failed[fe.Var] = true
				errs = append(errs, fe)
			}
		}
	}
	for _, e := range validateFields(rv.Elem()) {
		var fe *FieldError
		if errors.As(e, &fe) && failed[fe.Var] {
			continue
		}
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return fmt.Errorf("failed to load configuration: %w", errors.Join(errs...))
	}
	return nil
}

// validateFields calls Validate on the fields of v implementing Validator,
// descending into the other struct fields, and returns the problems one by
// one.
func validateFields(v reflect.Value) []error {
	var errs []error
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		if f.CanAddr() {
			if val, ok := f.Addr().Interface().(Validator); ok {
				errs = append(errs, flatten(val.Validate())...)
				continue
			}
		}
		if f.Kind() == reflect.Struct {
			errs = append(errs, validateFields(f)...)
		}
	}
	return errs
}

// flatten splits joined errors into their parts.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // splitting a join, not matching
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// fieldKey identifies a struct field as the env package reports it.
type fieldKey struct {
	name string
	typ  reflect.Type
}

// envKeys maps the fields of t, at any depth, to their variable names, with
// the same rules as the env package (tag "env", prefixes "envPrefix").
func envKeys(t reflect.Type) map[fieldKey][]string {
	out := map[fieldKey][]string{}
	var walk func(t reflect.Type, prefix string, depth int)
	walk = func(t reflect.Type, prefix string, depth int) {
		if depth > 10 {
			return
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			if key, _, _ := strings.Cut(sf.Tag.Get("env"), ","); key != "" {
				k := fieldKey{sf.Name, sf.Type}
				out[k] = append(out[k], prefix+key)
			}
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, prefix+sf.Tag.Get("envPrefix"), depth+1)
			}
		}
	}
	walk(t, Prefix, 0)
	return out
}

// fromEnvError turns an error of the env package into FieldErrors, one per
// problem.
func fromEnvError(err error, keys map[fieldKey][]string) []*FieldError {
	var (
		parseErr env.ParseError
		notSet   env.EnvVarIsNotSetError
		empty    env.EmptyEnvVarError
	)
	switch {
	case errors.As(err, &notSet):
		return []*FieldError{{Var: notSet.Key, Err: errors.New("required, not set")}}
	case errors.As(err, &empty):
		return []*FieldError{{Var: empty.Key, Err: errors.New("must not be empty")}}
	case errors.As(err, &parseErr):
		name := "field " + parseErr.Name
		if k := keys[fieldKey{parseErr.Name, parseErr.Type}]; len(k) == 1 {
			name = k[0]
		}
		var out []*FieldError
		for _, e := range flatten(parseErr.Err) {
			out = append(out, &FieldError{Var: name, Err: fmt.Errorf("invalid value: %w", e)})
		}
		return out
	default:
		return []*FieldError{{Var: "configuration", Err: err}}
	}
}

// parseBool reads a boolean as the Python runboat does (pydantic): 1, 0,
// true, false, t, f, yes, no, y, n, on, off, in any case.
func parseBool(v string) (any, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "t", "yes", "y", "on":
		return true, nil
	case "0", "false", "f", "no", "n", "off":
		return false, nil
	}
	return nil, fmt.Errorf("want a boolean (true, false, 1, 0, yes, no, on, off), got %q", v)
}

// unmarshalStrings reads a JSON object of strings into *m. Its errors never
// quote the input.
func unmarshalStrings[M ~map[string]V, V ~string](text []byte, m *M) error {
	var v map[string]V // not M: its UnmarshalJSON would call this again
	if err := json.Unmarshal(text, &v); err != nil {
		return jsonError(err, "a JSON object of strings")
	}
	*m = M(v)
	return nil
}

// jsonError describes a JSON decoding error without quoting the input,
// which may hold secrets.
func jsonError(err error, want string) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("want %s: invalid JSON at byte %d", want, syntax.Offset)
	case errors.As(err, &typ):
		where := ""
		if typ.Field != "" {
			where = " in " + typ.Field
		}
		return fmt.Errorf("want %s: unexpected JSON %s%s at byte %d", want, typ.Value, where, typ.Offset)
	default:
		return fmt.Errorf("want %s: invalid JSON", want)
	}
}
