package render

import (
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"runboat.dev/shared/model"
)

// hostileParts are pieces of text that would change the meaning of YAML, of
// a kustomization, of a shell or of a Kubernetes env var reference if any of
// them were pasted into text instead of being carried as data.
var hostileParts = []string{
	`x"` + "\n" + `  evil: true`,
	"\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: injected\n",
	"${HOME}", "$(PGPASSWORD)", "$$(x)", "{{ .Name }}", `'single'`, `\"`, `\\`,
	"# not a comment", ": colon", "\n- dash", "&anchor *alias", "!!binary ", "%YAML 1.2",
	"@`|>", "\t", "\r\n", "é中文😀", "\u202e", "\u2028", "\u00a0", "\ufeff", "\x01\x7f\u0085\u009f\ufffe",
	" null", " true ", "0x1F", "~",
}

// hostile returns a string of exactly n bytes made of hostileParts, cut on a
// character boundary and padded with '~'.
func hostile(n int, salt string) string {
	s := salt + strings.Join(hostileParts, "")
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s + strings.Repeat("~", n-len(s))
}

// TestRenderHostile renders every mode of the default kubefiles with
// hostile values, and checks that they end up byte for byte where they
// belong, that nothing else changed (same objects, same fields as a render of
// benign values), and that every name and label is valid.
func TestRenderHostile(t *testing.T) {
	branch := hostile(250, "")
	if len(branch) != 250 || !utf8.ValidString(branch) {
		t.Fatalf("bad test branch: %d bytes", len(branch))
	}
	ref, err := model.NewRef("oca/mis-builder", branch, 7, "fedcba9876543210fedcba9876543210fedcba98")
	if err != nil {
		t.Fatalf("hostile branch refused by model.NewRef: %v", err)
	}

	h := hostileValues{
		repo: hostile(120, "repo"), env: hostile(300, "env"), secret: hostile(300, "secret"),
		freeText: hostile(200, "tv"), annotation: hostile(180, "annotation"),
	}
	for _, name := range defaultKubefilesNames {
		fsys := defaultKubefiles(t, name)
		for _, mode := range requiredModes {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				checkRenderOf(t, name, fsys, mode, ref, h)
			})
		}
	}
}

// hostileValues are the values of a build, besides its Ref, that a render
// must carry as data: the repository, an env value, a secret env value, a
// free template var, and a template var the demo kubefiles put in a pod
// annotation.
type hostileValues struct {
	repo, env, secret, freeText, annotation string
}

// checkRenderOf renders mode of the kubefiles name (fsys) for ref with the
// values h, and checks that they end up byte for byte where they belong,
// that nothing else changed (same objects, same fields as a render of
// benign values), and that every name and label is valid.
func checkRenderOf(t *testing.T, name string, fsys fs.FS, mode Mode, ref model.Ref, h hostileValues) {
	t.Helper()
	vars := testVars(t)
	vars.Name, vars.Slug, vars.TargetBranch, vars.PR, vars.Commit, vars.Target = ref.Name(), ref.Slug(), ref.TargetBranch, ref.PRString(), ref.Commit, ref.TargetKey()
	vars.Repo = h.repo
	vars.Env = map[string]string{
		"PGHOST":     h.env,
		"EMPTY":      "",
		"MULTI_LINE": "a\nb\n\n",
	}
	vars.SecretEnv = map[string]string{
		"PGPASSWORD": h.secret,
		"BINARYISH":  "\x00\x01\xc3\xa9",
	}
	vars.TemplateVars = map[string]string{
		"storageClassName": "standard", // odoo places it in the PVC
		"free_text":        h.freeText,
	}
	var annotated string // demo: a template var placed in a pod annotation
	if name == "demo" {
		prefix := map[Mode]string{ModeDeployment: "web", ModeInitialize: "initialize", ModeCleanup: "cleanup"}[mode]
		annotated = prefix + "_kwok_waiting_reason"
		vars.TemplateVars[annotated] = h.annotation
	}

	benign := vars
	benign.TargetBranch, benign.Repo = "main", "oca/mis-builder"
	benign.Env = replaceValues(vars.Env, "plain")
	benign.SecretEnv = replaceValues(vars.SecretEnv, "plain")
	benign.TemplateVars = replaceValues(vars.TemplateVars, "plain")
	benign.TemplateVars["storageClassName"] = "standard"

	objs := mustRender(t, fsys, mode, vars)
	want := mustRender(t, fsys, mode, benign)

	if got, want := shapes(objs), shapes(want); !slices.Equal(got, want) {
		t.Errorf("hostile values changed the objects or their fields:\n%s", sliceDiff(want, got))
	}
	checkContract(t, objs, mode, vars)
	checkNamesAndLabels(t, objs)

	varsCM := find(t, objs, "ConfigMap", vars.Name+"-"+VarsConfigMap)
	data, _, _ := unstructured.NestedStringMap(varsCM.Object, "data")
	for k, v := range map[string]string{VarTargetBranch: ref.TargetBranch, VarRepo: vars.Repo, "free_text": vars.TemplateVars["free_text"]} {
		if data[k] != v {
			t.Errorf("vars %s:\n got %q\nwant %q", k, data[k], v)
		}
	}
	if annotated != "" {
		got := podAnnotations(t, objs)["runboat.dev/kwok-waiting-reason"]
		if got != vars.TemplateVars[annotated] {
			t.Errorf("pod annotation from %s:\n got %q\nwant %q", annotated, got, vars.TemplateVars[annotated])
		}
	}
}

func replaceValues(m map[string]string, v string) map[string]string {
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = v
	}
	return out
}

// shapes lists, for every object, its kind and name followed by the paths of
// all its fields: two renders with the same shapes differ in values only.
func shapes(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		id := o.GetKind() + "/" + o.GetName()
		out = append(out, id)
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for _, k := range slices.Sorted(maps.Keys(v)) {
					walk(prefix+"."+k, v[k])
				}
			case []any:
				for i, e := range v {
					walk(fmt.Sprintf("%s[%d]", prefix, i), e)
				}
			default:
				out = append(out, fmt.Sprintf("%s%s (%T)", id, prefix, v))
			}
		}
		walk("", o.Object)
	}
	return out
}

func sliceDiff(want, got []string) string {
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "- %s\n", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "+ %s\n", g)
		}
	}
	return b.String()
}

// checkNamesAndLabels checks every object name, Ingress host, and every
// label of the objects, of their selectors and of their pod templates.
func checkNamesAndLabels(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		id := o.GetKind() + " " + o.GetName()
		for _, p := range validation.IsDNS1123Subdomain(o.GetName()) {
			t.Errorf("%s: invalid name: %s", id, p)
		}
		if o.GetKind() == "Service" || o.GetKind() == "Job" {
			for _, p := range validation.IsDNS1123Label(o.GetName()) {
				t.Errorf("%s: invalid name: %s", id, p)
			}
		}
		if o.GetKind() == "Ingress" {
			rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
			for _, r := range rules {
				host, _, _ := unstructured.NestedString(r.(map[string]any), "host")
				for _, p := range validation.IsDNS1123Subdomain(host) {
					t.Errorf("%s: invalid host %q: %s", id, host, p)
				}
			}
		}
		for _, path := range [][]string{
			{"metadata", "labels"},
			{"spec", "selector", "matchLabels"},
			{"spec", "template", "metadata", "labels"},
		} {
			labels, _, _ := unstructured.NestedStringMap(o.Object, path...)
			if o.GetKind() == "Service" && path[1] == "selector" {
				labels, _, _ = unstructured.NestedStringMap(o.Object, "spec", "selector")
			}
			for k, v := range labels {
				for _, p := range validation.IsQualifiedName(k) {
					t.Errorf("%s: %v: invalid label key %q: %s", id, path, k, p)
				}
				for _, p := range validation.IsValidLabelValue(v) {
					t.Errorf("%s: %v: invalid label value %q: %s", id, path, v, p)
				}
			}
		}
	}
}
