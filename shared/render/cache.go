package render

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/konfig"

	"runboat.dev/shared/model"
)

// Cache renders each mode of a kubefiles folder once per set of rule
// settings (namespace, domain, image, env, template vars), with a random
// token in place of each value of a build, and makes the objects of each
// build from that render by putting the build's values in place of the
// tokens, in the parsed objects, as data. A render costs tens of
// milliseconds of kustomize; putting values in place costs a copy of the
// objects.
//
// That is a render only if what kustomize does with a build's values does
// not depend on what they are. Each rendering kept is first checked: its
// objects, with the values of an odd-shaped build put in place, must equal
// the direct render of that build, whose branch and repo hold every
// delimiter the kubefiles cut values at (a replacement's `delimiter`). A
// folder that fails the check (a generated name hashed over a value, a value
// cut at a delimiter) is rendered directly from then on. Errors are never kept: the direct render gives
// them, with the build's own values in their messages.
//
// The zero Cache is ready to use; a Cache may be used concurrently. The
// folders must not change while it is in use.
type Cache struct {
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
}

// cacheKey is what a rendering kept depends on besides the folder's
// contents: the folder (by the caller's name for it), the mode, the rule
// settings and the shape of the build values (a pull request or a branch,
// the length of the commit sha).
type cacheKey struct {
	folder, mode, settings string
	pr                     bool
	commitLen              int
}

type cacheEntry struct {
	once sync.Once
	tmpl *keptRender // nil: render directly
}

// keptRender is a render with the tokens of its build values.
type keptRender struct {
	objs   []*unstructured.Unstructured
	tokens Vars
}

// Render renders mode of the kubefiles folder fsys for the build of vars,
// as Render does, with the same result. folder names fsys: two folders
// given the same name must have the same contents.
func (c *Cache) Render(folder string, fsys fs.FS, mode Mode, vars Vars) ([]*unstructured.Unstructured, error) {
	if err := vars.validate(mode); err != nil {
		return nil, fmt.Errorf("failed to render kubefiles mode %q: invalid build variables: %w", mode, err)
	}
	key, err := keyOf(folder, mode, vars)
	if err != nil {
		return nil, err
	}
	e := c.entry(key)
	e.once.Do(func() { e.tmpl = keep(fsys, mode, vars) })
	if e.tmpl == nil {
		return Render(fsys, mode, vars)
	}
	objs, err := e.tmpl.instantiate(fsys, mode, vars)
	if err != nil {
		return nil, fmt.Errorf("failed to render kubefiles mode %q: %w", mode, err)
	}
	return objs, nil
}

func (c *Cache) entry(key cacheKey) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[cacheKey]*cacheEntry{}
	}
	e, ok := c.entries[key]
	if !ok {
		e = &cacheEntry{}
		c.entries[key] = e
	}
	return e
}

func keyOf(folder string, mode Mode, vars Vars) (cacheKey, error) {
	settings, err := json.Marshal(struct {
		Namespace, Domain, Image string
		Env, SecretEnv, Template map[string]string
		InitStatus               model.InitStatus
	}{vars.Namespace, vars.Domain, vars.Image, vars.Env, vars.SecretEnv, vars.TemplateVars, vars.InitStatus})
	if err != nil {
		return cacheKey{}, fmt.Errorf("failed to key the render: %w", err)
	}
	return cacheKey{folder: folder, mode: string(mode), settings: string(settings), pr: vars.PR != "", commitLen: len(vars.Commit)}, nil
}

// keep renders mode with tokens in place of the build values of vars, and
// checks the render against a direct one; nil when the folder must be
// rendered directly.
func keep(fsys fs.FS, mode Mode, vars Vars) *keptRender {
	delims, err := delimiters(fsys)
	if err != nil {
		return nil
	}
	tokens := tokenVars(vars)
	objs, err := render(fsys, mode, tokens)
	if err != nil {
		return nil
	}
	k := &keptRender{objs: objs, tokens: tokens}
	odd := oddVars(vars, delims)
	want, err := render(fsys, mode, odd)
	if err != nil {
		return nil
	}
	got, err := k.instantiate(fsys, mode, odd)
	if err != nil || !reflect.DeepEqual(got, want) {
		return nil
	}
	return k
}

// delimiterRE finds the delimiters of replacements (options.delimiter, of
// a source or a target) in a kustomization file.
var delimiterRE = regexp.MustCompile(`delimiter:\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s#,}]+))`)

// delimiters returns the delimiters the kustomization files of fsys split
// values with.
func delimiters(fsys fs.FS) ([]string, error) {
	names := map[string]bool{}
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		names[n] = true
		names[n+jinjaSuffix] = true
	}
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !names[d.Name()] {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		for _, m := range delimiterRE.FindAllStringSubmatch(string(b), -1) {
			d := m[1] + m[2] + m[3]
			if m[1] != "" {
				if u, err := strconv.Unquote(`"` + m[1] + `"`); err == nil {
					d = u
				}
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// instantiate returns the objects of the build of vars: a copy of the kept
// objects with the build's values in place of the tokens, checked as a
// render's are.
func (k *keptRender) instantiate(fsys fs.FS, mode Mode, vars Vars) ([]*unstructured.Unstructured, error) {
	if jinja, err := isJinjaFolder(fsys); err != nil {
		return nil, err
	} else if jinja {
		if err := checkJinjaValues(vars); err != nil {
			return nil, err
		}
	}
	r := k.replacer(vars)
	out := make([]*unstructured.Unstructured, len(k.objs))
	for i, o := range k.objs {
		out[i] = &unstructured.Unstructured{Object: replaceIn(o.Object, r).(map[string]any)}
	}
	if mode == ModeDeployment {
		for _, o := range out {
			if o.GetKind() == "Deployment" && o.GroupVersionKind().Group == "apps" {
				a := o.GetAnnotations()
				a[model.AnnotationLastScaled] = model.FormatTime(vars.LastScaled)
				o.SetAnnotations(a)
			}
		}
	}
	if err := checkObjects(out, mode, vars); err != nil {
		return nil, fmt.Errorf("invalid rendered objects: %w", err)
	}
	sortObjects(out)
	return out, nil
}

// replacer replaces the tokens by the values of vars: each value whole,
// and the commit label (a prefix of the commit of a SHA-256 repository)
// after the commit, so that the longer match wins.
func (k *keptRender) replacer(vars Vars) *strings.Replacer {
	t := k.tokens
	pairs := []string{
		t.Name, vars.Name,
		t.Slug, vars.Slug,
		t.Repo, vars.Repo,
		t.TargetBranch, vars.TargetBranch,
		t.Commit, vars.Commit,
		model.CommitLabel(t.Commit), model.CommitLabel(vars.Commit),
		t.Target, vars.Target,
		model.RepoKey(t.Repo), model.RepoKey(vars.Repo),
	}
	if t.PR != "" {
		pairs = append(pairs, t.PR, vars.PR)
	}
	return strings.NewReplacer(pairs...)
}

// replaceIn returns a copy of the JSON value v with r applied to every
// string, map keys included.
func replaceIn(v any, r *strings.Replacer) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[r.Replace(k)] = replaceIn(e, r)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = replaceIn(e, r)
		}
		return out
	case string:
		return r.Replace(v)
	}
	return v // numbers, booleans, null: immutable
}

// tokenVars returns vars with a random token in place of each build value,
// each valid where the value must be (a DNS label for the name and slug, hex
// of the same length for the commit, a label value for the target). The
// tokens are hex: no two can overlap, and no kubefiles can guess them.
func tokenVars(vars Vars) Vars {
	t := vars
	t.Name = "n" + randomHex(16)
	t.Slug = "s" + randomHex(16)
	t.Repo = "r" + randomHex(12) + "/r" + randomHex(12)
	t.TargetBranch = "b" + randomHex(16)
	if vars.PR != "" {
		// A number of ten digits, as long as a PR number may be.
		t.PR = "9" + randomDigits(9)
	}
	t.Commit = randomHex(len(vars.Commit) / 2)
	t.Target = "t-" + randomHex(16)
	t.LastScaled = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	return t
}

// oddVars returns the values of a build of another shape than any token:
// punctuation, a slash, non-ASCII letters and the delimiters the kubefiles
// split values with in the branch and repo, dashes in the name and slug, a
// pull request number of another length. A replacement that takes or puts
// a part of a value, cut at a delimiter, cuts these values elsewhere than
// the tokens, and the check of the render kept sees it.
func oddVars(vars Vars, delimiters []string) Vars {
	extra := strings.Map(func(r rune) rune {
		if yamlUnsafe(r) {
			return -1
		}
		return r
	}, strings.Join(delimiters, "x"))
	o := vars
	o.Name = "odd-build-" + randomHex(4)
	o.Slug = "odd-slug-" + randomHex(4)
	o.Repo = "odd-owner/odd.repo_" + extra + randomHex(2)
	o.TargetBranch = "odd/branch.name-Ünï_" + extra + randomHex(2)
	if vars.PR != "" {
		o.PR = "7"
	}
	o.Commit = strings.Repeat("0", len(vars.Commit)-8) + randomHex(4)
	o.Target = "odd-target-" + randomHex(4)
	o.LastScaled = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	return o
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	return hex.EncodeToString(randomBytes(n))
}

// randomDigits returns n random decimal digits.
func randomDigits(n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error: it crashes the program
	// when the system's source fails (Go 1.24 and later).
	_, _ = rand.Read(b)
	return b
}

// kept counts the renders kept.
func (c *Cache) kept() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.entries {
		if e.tmpl != nil {
			n++
		}
	}
	return n
}
