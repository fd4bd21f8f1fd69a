package render

// The Python runboat's kubefiles format: a folder holding
// kustomization.yaml.jinja at its top, a Jinja template rendered for each
// mode with runboat's variables into the folder's kustomization.
//
// No value of a build is pasted into YAML text here either. The template is
// rendered with an opaque token in place of every value (the mode aside,
// which the template compares), the result is parsed as YAML, and the values
// are put into the parsed tree as data: in scalars only, where a token may
// sit in a larger string. A token anywhere else (a mapping key, an anchor, a
// tag) or changed by the template (a filter, a slice) is an error.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ardanlabs/jinja"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// JinjaKustomizationFile is the file that makes a kubefiles folder one of the
// Python runboat's format: a Jinja template of the folder's kustomization,
// rendered for each mode.
const JinjaKustomizationFile = "kustomization.yaml.jinja"

// jinjaSuffix is the suffix of the templates of a folder in runboat's format;
// each is rendered into the file named without it.
const jinjaSuffix = ".jinja"

// isJinjaFolder reports whether fsys is a kubefiles folder in runboat's
// format.
func isJinjaFolder(fsys fs.FS) (bool, error) {
	info, err := fs.Stat(fsys, JinjaKustomizationFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("failed to read %s: %w", JinjaKustomizationFile, err)
	case info.IsDir():
		return false, fmt.Errorf("%s is a folder, want a Jinja template", JinjaKustomizationFile)
	}
	return true, nil
}

// jinjaBase renders the runboat-format folder fsys, copied into mem, for
// mode, and returns it as the base of the overlay: a Kustomization that names
// its objects itself (the template sets the build name prefix).
func jinjaBase(fsys fs.FS, mem filesys.FileSystem, mode Mode, vars Vars) (overlayBase, error) {
	if err := writeJinjaFolder(fsys, mem, mode, vars); err != nil {
		return overlayBase{}, err
	}
	return overlayBase{dir: path.Join("..", path.Base(kubefilesRoot)), ownNames: true}, nil
}

// writeJinjaFolder renders the templates of the runboat-format folder fsys
// (copied into mem under kubefilesRoot already) for mode: each *.jinja file
// is replaced by its rendering, without the suffix.
func writeJinjaFolder(fsys fs.FS, mem filesys.FileSystem, mode Mode, vars Vars) error {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if _, err := fs.Stat(fsys, name); err == nil {
			return fmt.Errorf("the kubefiles folder has both %s and %s", JinjaKustomizationFile, name)
		}
	}
	var templates []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, jinjaSuffix) {
			templates = append(templates, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to list the templates of the kubefiles folder: %w", err)
	}
	if err := checkJinjaValues(vars); err != nil {
		return err
	}
	values := newJinjaValues(mode, vars)
	for _, p := range templates {
		out := strings.TrimSuffix(p, jinjaSuffix)
		if ext := path.Ext(out); ext != ".yaml" && ext != ".yml" {
			return fmt.Errorf("%s: only YAML files (*.yaml.jinja, *.yml.jinja) may be templates", p)
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", p, err)
		}
		b, err := values.render(p, src, p == JinjaKustomizationFile)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := mem.RemoveAll(path.Join(kubefilesRoot, p)); err != nil {
			return fmt.Errorf("failed to remove %s: %w", p, err)
		}
		if err := mem.WriteFile(path.Join(kubefilesRoot, out), b); err != nil {
			return fmt.Errorf("failed to write %s: %w", out, err)
		}
	}
	return nil
}

// checkJinjaValues refuses the values that kustomize cannot carry through
// the constructs of runboat's format: its builtin generators and transformers
// (configMapGenerator literals, commonAnnotations) write their input raw into
// YAML, which refuses some characters (see yamlUnsafe). The other values are
// DNS names or hex already.
func checkJinjaValues(vars Vars) error {
	var errs []error
	check := func(what, value string) {
		if i := strings.IndexFunc(value, yamlUnsafe); i >= 0 {
			r, _ := utf8.DecodeRuneInString(value[i:])
			errs = append(errs, fmt.Errorf("%s holds the character %U, which kustomize cannot carry through runboat's kubefiles format", what, r))
		}
	}
	check("the target branch", vars.TargetBranch)
	check("the repo", vars.Repo)
	for _, m := range []struct {
		what   string
		values map[string]string
	}{{"env", vars.Env}, {"secret env", vars.SecretEnv}, {"template var", vars.TemplateVars}} {
		// The key only: a secret is never shown.
		for _, k := range slices.Sorted(maps.Keys(m.values)) {
			check(fmt.Sprintf("%s %q", m.what, k), m.values[k])
		}
	}
	return errors.Join(errs...)
}

// jinjaValues are the variables of a template, as tokens, and the value of
// each token.
type jinjaValues struct {
	context map[string]any
	nonce   string
	tokens  []string // the value of token i
	tokenRE *regexp.Regexp
	// done are the scalars whose values are in place already.
	done map[*kyaml.Node]bool
}

// newJinjaValues makes the variables of runboat's templates for a render of
// mode: those of the Python runboat (its DeploymentVars), with a token for
// every value but the mode.
func newJinjaValues(mode Mode, vars Vars) *jinjaValues {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:]) // never fails
	v := &jinjaValues{nonce: hex.EncodeToString(nonce[:]), done: map[*kyaml.Node]bool{}}
	// The token is mixed case, so that a filter changing case (lower, upper)
	// gives something that is no longer a token but still holds the nonce.
	v.tokenRE = regexp.MustCompile(`RbV` + v.nonce + `x([0-9]{4,})Z`)
	imageName, imageTag := splitImageLikeRunboat(vars.Image)
	var pr any // None for a branch build, as in runboat
	if vars.PR != "" {
		pr = v.token(vars.PR)
	}
	v.context = map[string]any{
		"mode":         string(mode),
		"namespace":    v.token(vars.Namespace),
		"build_name":   v.token(vars.Name),
		"build_slug":   v.token(vars.Slug),
		"build_domain": v.token(vars.Domain),
		"commit_info": map[string]any{
			"repo":          v.token(vars.Repo),
			"target_branch": v.token(vars.TargetBranch),
			"pr":            pr,
			"git_commit":    v.token(vars.Commit),
		},
		"image_name":          v.token(imageName),
		"image_tag":           v.token(imageTag),
		"build_env":           v.tokenMap(vars.Env, true),
		"build_secret_env":    v.tokenMap(vars.SecretEnv, true),
		"build_template_vars": v.tokenMap(vars.TemplateVars, false),
	}
	return v
}

// splitImageLikeRunboat splits an image reference as the Python runboat
// does: at its first colon, the tag being "latest" when there is none. (For
// a registry with a port, the "name" and "tag" are cut at the port; put back
// together by kustomize's images transformer, name:tag, they give the
// reference again.)
func splitImageLikeRunboat(image string) (name, tag string) {
	name, tag, _ = strings.Cut(image, ":")
	if tag == "" {
		tag = "latest"
	}
	return name, tag
}

// token returns a new token standing for value.
func (v *jinjaValues) token(value string) string {
	v.tokens = append(v.tokens, value)
	// Zero-padded so that sorting tokens sorts them in the order made.
	return fmt.Sprintf("RbV%sx%04dZ", v.nonce, len(v.tokens)-1)
}

// tokenMap returns m with a token for every value, and for every key too
// when tokenKeys (a dict iterated by templates; a dict indexed by name, the
// template vars, keeps its keys). Keys are made in sorted order, so that
// iterating over the items sees them sorted by real key.
func (v *jinjaValues) tokenMap(m map[string]string, tokenKeys bool) map[string]any {
	out := make(map[string]any, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := k
		if tokenKeys {
			key = v.token(k)
		}
		out[key] = v.token(m[k])
	}
	return out
}

// render renders the template src of the file p and returns the YAML
// documents it makes, with the values in place. kustomization tells whether
// it is the kustomization, whose inline patches are YAML too.
//
// The engine is github.com/ardanlabs/jinja, which resolves attributes
// without reflection on method names: an engine that looks methods up by
// name at run time makes the linker keep every exported method of every
// type in the function (a third of its size). Its whitespace defaults are
// undone to jinja2.Template's (jinja2Defaults). As the Python runboat's
// jinja2.Template, it has no loader: a template includes, imports or
// extends no other file.
func (v *jinjaValues) render(p string, src []byte, kustomization bool) ([]byte, error) {
	tpl, err := jinja.Compile(jinja2Defaults(string(src)))
	if err != nil {
		return nil, fmt.Errorf("invalid Jinja template: %w", err)
	}
	rendered, err := tpl.Render(maps.Clone(v.context))
	if err != nil {
		return nil, fmt.Errorf("failed to render the Jinja template: %w", err)
	}
	text := []byte(rendered)
	docs, err := decodeYAML(text)
	if err != nil {
		return nil, fmt.Errorf("the rendered template is not YAML: %w", err)
	}
	for _, doc := range docs {
		if kustomization {
			if err := v.substituteInlinePatches(doc); err != nil {
				return nil, fmt.Errorf("in the rendered template: %w", err)
			}
		}
		if err := v.substitute(doc); err != nil {
			return nil, fmt.Errorf("in the rendered template: %w", err)
		}
	}
	out, err := encodeYAML(docs)
	if err != nil {
		return nil, fmt.Errorf("failed to write the rendered template: %w", err)
	}
	if v.holdsNonce(string(out)) {
		// Not expected: every token was substituted or refused above.
		return nil, errors.New("a build value is left as a token in the rendered template")
	}
	return out, nil
}

// holdsNonce reports whether s holds this render's nonce, in any case.
func (v *jinjaValues) holdsNonce(s string) bool {
	return strings.Contains(strings.ToLower(s), v.nonce)
}

// tokenPartLen is the length of the parts of a token's start that
// holdsTokenPart finds.
const tokenPartLen = 6

// holdsTokenPart reports whether s, text the template made before any value
// is put in, holds a token or a part of the start of one (what a filter or a
// slice leaves of it), in any case. Only for text without values: a value
// may hold a few characters of the nonce by chance.
func (v *jinjaValues) holdsTokenPart(s string) bool {
	s = strings.ToLower(s)
	start := "rbv" + v.nonce
	for i := 0; i+tokenPartLen <= len(start); i++ {
		if strings.Contains(s, start[i:i+tokenPartLen]) {
			return true
		}
	}
	return false
}

// substitute puts the values in place of the tokens in the scalars of the
// YAML tree n. A token elsewhere, or no longer whole, is an error.
func (v *jinjaValues) substitute(n *kyaml.Node) error {
	if v.done[n] {
		return nil // an inline patch, whose values are in place
	}
	if v.holdsTokenPart(n.Anchor) || v.holdsTokenPart(n.Tag) {
		return fmt.Errorf("line %d: a build value may not be part of a YAML anchor or tag", n.Line)
	}
	// Comments are dropped: kustomize does not read them, and a value
	// there would be text nobody checks.
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	switch n.Kind {
	case kyaml.ScalarNode:
		return v.substituteScalar(n)
	case kyaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := v.refuseTokens(n.Content[i]); err != nil {
				return err
			}
			if err := v.substitute(n.Content[i+1]); err != nil {
				return err
			}
		}
	case kyaml.DocumentNode, kyaml.SequenceNode:
		for _, c := range n.Content {
			if err := v.substitute(c); err != nil {
				return err
			}
		}
	}
	// An alias is walked where its anchor is.
	return nil
}

// refuseTokens returns an error when a mapping key holds a build value.
func (v *jinjaValues) refuseTokens(key *kyaml.Node) error {
	if v.treeHoldsNonce(key) {
		return fmt.Errorf("line %d: a build value may not be part of a mapping key", key.Line)
	}
	key.HeadComment, key.LineComment, key.FootComment = "", "", ""
	return nil
}

// treeHoldsNonce reports whether a value, anchor or tag of the tree n holds
// this render's nonce.
func (v *jinjaValues) treeHoldsNonce(n *kyaml.Node) bool {
	if v.holdsTokenPart(n.Value) || v.holdsTokenPart(n.Anchor) || v.holdsTokenPart(n.Tag) {
		return true
	}
	return slices.ContainsFunc(n.Content, v.treeHoldsNonce)
}

// substituteScalar puts the values in place of the tokens of a scalar. The
// result is a string, whatever it holds.
func (v *jinjaValues) substituteScalar(n *kyaml.Node) error {
	if !v.holdsTokenPart(n.Value) {
		return nil
	}
	if v.holdsTokenPart(v.tokenRE.ReplaceAllString(n.Value, "")) {
		return fmt.Errorf("line %d: a build value was changed by the template (a filter, a slice...): values are opaque, use them as they are", n.Line)
	}
	// One pass: a value that looks like a token is not read again.
	n.Value = v.tokenRE.ReplaceAllStringFunc(n.Value, func(tok string) string {
		i, _ := strconv.Atoi(v.tokenRE.FindStringSubmatch(tok)[1])
		return v.tokens[i]
	})
	n.Tag = "!!str"
	if n.Style != kyaml.DoubleQuotedStyle && n.Style != kyaml.SingleQuotedStyle {
		// The encoder picks a style that reads back as this string.
		n.Style = 0
	}
	return nil
}

// substituteInlinePatches handles the strings of a kustomization that
// kustomize parses as YAML in turn, its inline patches: each one holding a
// token is parsed, the values put in its tree, and written again.
func (v *jinjaValues) substituteInlinePatches(doc *kyaml.Node) error {
	root := doc
	if root.Kind == kyaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != kyaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		field, list := root.Content[i].Value, root.Content[i+1]
		if list.Kind != kyaml.SequenceNode {
			continue
		}
		for j, item := range list.Content {
			where := fmt.Sprintf("%s[%d]", field, j)
			switch field {
			case "patches", "patchesJson6902":
				if item.Kind != kyaml.MappingNode {
					continue
				}
				for k := 0; k+1 < len(item.Content); k += 2 {
					if item.Content[k].Value == "patch" {
						if err := v.substituteInlineYAML(item.Content[k+1], where+".patch"); err != nil {
							return err
						}
					}
				}
			case "patchesStrategicMerge":
				if err := v.substituteInlineYAML(item, where); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// substituteInlineYAML puts the values into the YAML text of the scalar n,
// as data.
func (v *jinjaValues) substituteInlineYAML(n *kyaml.Node, where string) error {
	if n.Kind != kyaml.ScalarNode || !v.holdsTokenPart(n.Value) {
		return nil
	}
	docs, err := decodeYAML([]byte(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: %s is not YAML: %w", n.Line, where, err)
	}
	for _, d := range docs {
		if err := v.substitute(d); err != nil {
			return fmt.Errorf("line %d: %s: %w", n.Line, where, err)
		}
	}
	b, err := encodeYAML(docs)
	if err != nil {
		return fmt.Errorf("line %d: failed to write %s: %w", n.Line, where, err)
	}
	n.Value = strings.TrimSuffix(string(b), "\n")
	n.Tag = "!!str"
	n.Style = kyaml.LiteralStyle
	v.done[n] = true
	return nil
}

// decodeYAML parses the YAML documents of b.
func decodeYAML(b []byte) ([]*kyaml.Node, error) {
	dec := kyaml.NewDecoder(bytes.NewReader(b))
	var docs []*kyaml.Node
	for {
		var n kyaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
}

// encodeYAML writes YAML documents.
func encodeYAML(docs []*kyaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := kyaml.NewEncoder(&buf)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
