package render

import (
	"github.com/ardanlabs/jinja"

	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"runboat.dev/shared/model"
)

// jinjaKubefilesDir holds kubefiles in the Python runboat's format, written
// for these tests with every construct of runboat's default template.
const jinjaKubefilesDir = "testdata/runboat-format"

// jinjaModes are the modes rendered from runboat-format kubefiles: every
// one, as runboat does (stop gives only the generated env objects).
var jinjaModes = []Mode{ModeDeployment, ModeInitialize, ModeCleanup, ModeStop}

// jinjaKubefiles returns a copy of the runboat-format test kubefiles, with
// the files of edits replaced (or removed, when empty).
func jinjaKubefiles(t *testing.T, edits map[string]string) fstest.MapFS {
	t.Helper()
	mfs := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(jinjaKubefilesDir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(jinjaKubefilesDir + "/" + p)
		mfs[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range edits {
		if content == "" {
			delete(mfs, p)
			continue
		}
		mfs[p] = &fstest.MapFile{Data: []byte(content)}
	}
	return mfs
}

func TestRenderJinjaGolden(t *testing.T) {
	fsys := os.DirFS(jinjaKubefilesDir)
	for _, mode := range jinjaModes {
		t.Run(string(mode), func(t *testing.T) {
			checkGolden(t, "runboat-format-"+string(mode), toYAML(t, mustRender(t, fsys, mode, testVars(t))))
		})
	}
}

func TestHasModeJinja(t *testing.T) {
	for _, mode := range []Mode{ModeDeployment, ModeInitialize, ModeCleanup, ModeStart, ModeStop} {
		if has, err := HasMode(os.DirFS(jinjaKubefilesDir), mode); err != nil || !has {
			t.Errorf("HasMode(%s) = %v, %v; want true: runboat's template renders every mode", mode, has, err)
		}
	}
}

// TestRenderJinjaContract checks, for each mode, what runboat relies on and
// where the template put the values.
func TestRenderJinjaContract(t *testing.T) {
	for _, pr := range []string{"42", ""} {
		for _, mode := range jinjaModes {
			t.Run(string(mode)+"/pr="+pr, func(t *testing.T) {
				vars := testVars(t)
				vars.PR = pr
				objs := mustRender(t, os.DirFS(jinjaKubefilesDir), mode, vars)
				checkJinjaContract(t, objs, mode, vars)
				checkNamesAndLabels(t, objs)
			})
		}
	}
}

// checkJinjaContract checks the objects of a render of the test kubefiles
// in runboat's format for vars.
func checkJinjaContract(t *testing.T, objs []*unstructured.Unstructured, mode Mode, vars Vars) {
	t.Helper()
	kinds := map[string]int{}
	for _, o := range objs {
		id := o.GetKind() + " " + o.GetName()
		kinds[o.GetKind()]++
		if o.GetNamespace() != vars.Namespace {
			t.Errorf("%s: namespace %q", id, o.GetNamespace())
		}
		if !strings.HasPrefix(o.GetName(), vars.Name+"-") || strings.HasPrefix(o.GetName(), vars.Name+"-"+vars.Name) {
			t.Errorf("%s: want the build name prefix, once", id)
		}
		labels := o.GetLabels()
		for k, v := range map[string]string{model.LabelBuild: vars.Name, model.LabelCommit: vars.Commit, model.LabelTarget: vars.Target} {
			if labels[k] != v {
				t.Errorf("%s: label %s=%q, want %q", id, k, labels[k], v)
			}
		}
		annotations := o.GetAnnotations()
		for k, v := range map[string]string{
			model.AnnotationRepo:         vars.Repo,
			model.AnnotationTargetBranch: vars.TargetBranch,
			model.AnnotationPR:           vars.PR,
			model.AnnotationCommit:       vars.Commit,
		} {
			if got, ok := annotations[k]; !ok || got != v {
				t.Errorf("%s: annotation %s=%q (present %v), want %q", id, k, got, ok, v)
			}
		}
		if kind := string(mode.jobKind()); o.GetKind() == "Job" {
			if labels[model.LabelJobKind] != kind || podTemplateLabels(t, o)[model.LabelJobKind] != kind {
				t.Errorf("%s: job-kind labels %q and %q, want %q", id, labels[model.LabelJobKind], podTemplateLabels(t, o)[model.LabelJobKind], kind)
			}
		}
	}
	env := find(t, objs, "ConfigMap", vars.Name+"-appenv")
	data, _, _ := unstructured.NestedStringMap(env.Object, "data")
	want := map[string]string{
		"APP_DATABASE":   vars.Name,
		"APP_PUBLIC_URL": "http://" + vars.Host() + "/",
		"APP_SOURCE":     vars.Repo + "@" + vars.Commit,
		"APP_PR":         vars.PR,
	}
	maps.Copy(want, vars.Env)
	if !maps.Equal(data, want) {
		t.Errorf("env ConfigMap %q, want %q", data, want)
	}
	secret, err := secretData(find(t, objs, "Secret", vars.Name+"-appsecretenv"))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(secret, vars.SecretEnv) {
		t.Errorf("secret env %q, want %q", secret, vars.SecretEnv)
	}
	switch mode {
	case ModeDeployment:
		if kinds["Deployment"] != 1 || objs[len(objs)-1].GetKind() != "Deployment" {
			t.Fatalf("kinds %v, want one Deployment, last", kinds)
		}
		d := objs[len(objs)-1]
		checkDeployment(t, d, vars)
		tmpl, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "annotations")
		if tmpl["example.org/branch"] != vars.TargetBranch {
			t.Errorf("pod template annotation from the inline patch %q, want %q", tmpl["example.org/branch"], vars.TargetBranch)
		}
		ing := find(t, objs, "Ingress", vars.Name+"-web")
		rules, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules")
		for i, host := range []string{vars.Host(), vars.Slug + ".mail." + vars.Domain} {
			if got, _, _ := unstructured.NestedString(rules[i].(map[string]any), "host"); got != host {
				t.Errorf("Ingress rule %d: host %q, want %q", i, got, host)
			}
		}
		pvc := find(t, objs, "PersistentVolumeClaim", vars.Name+"-data")
		if got, _, _ := unstructured.NestedString(pvc.Object, "spec", "storageClassName"); got != vars.TemplateVars["storageClassName"] {
			t.Errorf("storage class %q, want %q", got, vars.TemplateVars["storageClassName"])
		}
	case ModeInitialize, ModeCleanup:
		if kinds["Job"] != 1 || kinds["Deployment"] != 0 {
			t.Errorf("kinds %v, want one Job and no Deployment", kinds)
		}
	case ModeStop:
		if !maps.Equal(kinds, map[string]int{"ConfigMap": 2, "Secret": 1}) {
			t.Errorf("kinds %v, want the generated ConfigMaps and Secret", kinds)
		}
	}
}

// TestRenderJinjaHostile renders every mode of the runboat-format kubefiles
// with hostile values, which the template pastes into quoted YAML strings,
// plain scalars, generator literals and inline patches: they end up byte for
// byte where they belong, and nothing else changes.
func TestRenderJinjaHostile(t *testing.T) {
	// Without the characters kustomize cannot carry in runboat's format
	// (TestRenderJinjaLiteralLimit).
	branch := literalSafe(hostile(250, ""))
	ref, err := model.NewRef("oca/mis-builder", branch, 7, "fedcba9876543210fedcba9876543210fedcba98")
	if err != nil {
		t.Fatalf("hostile branch refused by model.NewRef: %v", err)
	}
	fsys := os.DirFS(jinjaKubefilesDir)
	for _, mode := range jinjaModes {
		t.Run(string(mode), func(t *testing.T) {
			vars := testVars(t)
			vars.Name, vars.Slug, vars.TargetBranch, vars.PR, vars.Commit, vars.Target = ref.Name(), ref.Slug(), ref.TargetBranch, ref.PRString(), ref.Commit, ref.TargetKey()
			vars.Repo = literalSafe(hostile(120, "repo"))
			vars.Env = map[string]string{"PGHOST": literalSafe(hostile(300, "env")), "EMPTY": "", "MULTI_LINE": "a\nb\n\n"}
			vars.SecretEnv = map[string]string{"PGPASSWORD": literalSafe(hostile(300, "secret"))}
			vars.TemplateVars = map[string]string{"storageClassName": hostile(200, "tv")}

			benign := vars
			benign.TargetBranch, benign.Repo = "main", "oca/mis-builder"
			benign.Env = replaceValues(vars.Env, "plain")
			benign.SecretEnv = replaceValues(vars.SecretEnv, "plain")
			benign.TemplateVars = replaceValues(vars.TemplateVars, "standard")

			objs := mustRender(t, fsys, mode, vars)
			if got, want := shapes(objs), shapes(mustRender(t, fsys, mode, benign)); !slices.Equal(got, want) {
				t.Errorf("hostile values changed the objects or their fields:\n%s", sliceDiff(want, got))
			}
			checkJinjaContract(t, objs, mode, vars)
			checkNamesAndLabels(t, objs)
		})
	}
}

// TestRenderJinjaInvalid checks that templates that cannot be rendered, or
// whose rendering would put a value anywhere but in a string, are refused
// with an error naming the file.
func TestRenderJinjaInvalid(t *testing.T) {
	const kust = JinjaKustomizationFile
	tmpl := string(jinjaKubefiles(t, nil)[kust].Data)
	withKust := func(old, repl string) map[string]string {
		if !strings.Contains(tmpl, old) {
			t.Fatalf("test kustomization has no %q", old)
		}
		return map[string]string{kust: strings.Replace(tmpl, old, repl, 1)}
	}
	for _, tc := range []struct {
		name  string
		edits map[string]string
		want  []string
	}{
		{"syntax error", withKust("{%- endif %}", "{%- endfor %}"), []string{kust, "invalid Jinja template"}},
		{"unknown filter", withKust(`"{{ build_name }}-"`, `"{{ build_name | nosuchfilter }}-"`), []string{kust, "nosuchfilter"}},
		{"include", withKust("namespace:", "{% include 'other.yaml' %}\nnamespace:"), []string{kust, `unknown statement "include"`}},
		{"missing resource", withKust("- cleanup.yaml", "- missing.yaml"), []string{"missing.yaml"}},
		{"no template", map[string]string{kust: ""}, []string{"kubefiles mode not found", `no folder "cleanup"`}},
		{"value in a key", withKust("namespace:", "{{ build_name }}: x\nnamespace:"), []string{kust, "mapping key"}},
		{"value in a patch key", withKust("path: /spec/storageClassName", "{{ commit_info.target_branch }}: x\n        path: /spec/storageClassName"), []string{kust, "patches[0].patch", "mapping key"}},
		{"value changed by a filter", withKust(`"{{ build_name }}"`, `"{{ build_name | upper }}"`), []string{kust, "changed by the template"}},
		{"value sliced", withKust(`"{{ build_name }}"`, `"{{ build_name[:6] }}"`), []string{kust, "changed by the template"}},
		{"value split", withKust(`"{{ build_name }}"`, `"{{ build_name[4:] }}"`), []string{kust, "changed by the template"}},
		{"value lower", withKust(`"{{ build_name }}"`, `"{{ build_name | lower }}"`), []string{kust, "changed by the template"}},
		{"value in an anchor", withKust("namespace: {{ namespace }}", "namespace: &{{ build_name }} x"), []string{kust, "anchor"}},
		{"not YAML", withKust("namespace: {{ namespace }}", "namespace: [{{ namespace }}"), []string{kust, "not YAML"}},
		{"patch not YAML", withKust("value: {{ build_slug }}.{{ build_domain }}", "value: [{{ build_slug }}"), []string{kust, "patches[1].patch is not YAML"}},
		{"both kustomizations", map[string]string{"kustomization.yaml": "resources: []\n"}, []string{kust, "kustomization.yaml"}},
		{"template not YAML", map[string]string{"app-init.sh.jinja": "echo {{ build_name }}\n"}, []string{"app-init.sh.jinja", "only YAML"}},
		{"error in another template", map[string]string{"service.yaml.jinja": "{{ build_name | nosuchfilter }}\n"}, []string{"service.yaml.jinja", "nosuchfilter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := testVars(t)
			_, err := Render(jinjaKubefiles(t, tc.edits), ModeCleanup, vars)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(strings.ToLower(err.Error()), "rbv") {
				t.Errorf("error %q shows a token", err)
			}
		})
	}
}

// TestRenderJinjaOtherTemplates renders a resource file that is a template
// too, as runboat renders every *.jinja file.
func TestRenderJinjaOtherTemplates(t *testing.T) {
	fsys := jinjaKubefiles(t, map[string]string{
		"cleanup.yaml": "",
		"cleanup.yaml.jinja": strings.Replace(string(jinjaKubefiles(t, nil)["cleanup.yaml"].Data),
			"  backoffLimit: 0\n", "  backoffLimit: 0\n  # {{ build_name }}\n  activeDeadlineSeconds: {{ 600 if commit_info.pr else 60 }}\n", 1),
	})
	vars := testVars(t)
	vars.TargetBranch = `x"` + "\n  evil: true"
	objs := mustRender(t, fsys, ModeCleanup, vars)
	job := find(t, objs, "Job", vars.Name+"-cleanup")
	// Not a value of the build: Jinja's own output, typed by YAML.
	if got, _, _ := unstructured.NestedInt64(job.Object, "spec", "activeDeadlineSeconds"); got != 600 {
		t.Errorf("activeDeadlineSeconds %d, want 600", got)
	}
	checkJinjaContract(t, objs, ModeCleanup, vars)
}

// literalSafe drops from s the characters that kustomize's generators cannot
// carry in a literal: those it writes raw into YAML that YAML refuses.
func literalSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if yamlUnsafe(r) {
			return -1
		}
		return r
	}, s)
}

// TestRenderJinjaLiteralLimit checks that a value kustomize cannot carry
// through runboat's format fails the render, rather than ending up changed.
func TestRenderJinjaLiteralLimit(t *testing.T) {
	vars := testVars(t)
	vars.Env = map[string]string{"PGHOST": "a\u0085b"}
	vars.TargetBranch = hostile(250, "")
	_, err := Render(os.DirFS(jinjaKubefilesDir), ModeCleanup, vars)
	for _, want := range []string{`env "PGHOST" holds the character U+0085`, "the target branch holds the character U+"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// TestRenderJinjaAccepted renders what a template may do with values: a
// filter that leaves one as it is, a missing template var (empty), an image
// with a registry port.
func TestRenderJinjaAccepted(t *testing.T) {
	tmpl := string(jinjaKubefiles(t, nil)[JinjaKustomizationFile].Data)
	tmpl = strings.Replace(tmpl, "namespace: {{ namespace }}", "namespace: {{ namespace | trim }}", 1)
	tmpl = strings.Replace(tmpl, "commonAnnotations:\n", "commonAnnotations:\n  example.org/missing: \"{{ build_template_vars[\"nope\"] }}\"\n", 1)
	tmpl = strings.Replace(tmpl, "commonAnnotations:\n", "commonAnnotations:\n  example.org/has-storage: \"{{ 'storageClassName' in build_template_vars }}\"\n", 1)
	vars := testVars(t)
	vars.Image = "registry.example.org:5000/app:1.0" // cut at the port by runboat's split
	objs := mustRender(t, jinjaKubefiles(t, map[string]string{JinjaKustomizationFile: tmpl}), ModeCleanup, vars)
	checkJinjaContract(t, objs, ModeCleanup, vars)
	job := find(t, objs, "Job", vars.Name+"-cleanup")
	containers, _, _ := unstructured.NestedSlice(job.Object, "spec", "template", "spec", "containers")
	if got := containers[0].(map[string]any)["image"]; got != vars.Image {
		t.Errorf("image %q, want %q", got, vars.Image)
	}
	if got, ok := objs[0].GetAnnotations()["example.org/missing"]; !ok || got != "" {
		t.Errorf("annotation of a missing template var %q (present %v), want empty", got, ok)
	}
	if got := objs[0].GetAnnotations()["example.org/has-storage"]; got != "True" {
		t.Errorf("annotation of a test of a template var name %q, want True", got)
	}
}

func TestSplitImageLikeRunboat(t *testing.T) {
	for image, want := range map[string][2]string{
		"ghcr.io/oca/oca-ci:py3.10-odoo16.0": {"ghcr.io/oca/oca-ci", "py3.10-odoo16.0"},
		"busybox":                            {"busybox", "latest"},
		"busybox:":                           {"busybox", "latest"},
		// Cut at the first colon, as runboat: kustomize puts name:tag
		// together again.
		"registry:5000/app:1.0": {"registry", "5000/app:1.0"},
	} {
		if name, tag := splitImageLikeRunboat(image); name != want[0] || tag != want[1] {
			t.Errorf("splitImageLikeRunboat(%q) = %q, %q; want %q, %q", image, name, tag, want[0], want[1])
		}
	}
}

// jinja2Defaults undoes the engine's trim_blocks and lstrip_blocks: block
// and comment tags keep the newline after them and the indentation before
// them, as under jinja2.Template; their "-" still trims.
func TestJinja2Defaults(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"a:\n  {% if x %}\n  - b\n  {% endif %}\nc: d\n", "a:\n  \n  - b\n  \nc: d\n"},
		{"a:\n  {%- if x %}\n  - b\n  {%- endif %}\nc: d\n", "a:\n  - b\nc: d\n"},
		{"{# it's a comment #}\nx: {{ '%}' }}\n", "\nx: %}\n"},
		{"{#- note -#}\nx: 1\n  {% if x -%}\n  y\n{% endif %}", "x: 1\n  y\n"},
		{"k: {% for i in [1, 2] %}{{ i }}{% endfor %}\nz: 1", "k: 12\nz: 1"},
	} {
		tpl, err := jinja.Compile(jinja2Defaults(tc.src))
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		got, err := tpl.Render(map[string]any{"x": true})
		if err != nil || got != tc.want {
			t.Errorf("%q renders as %q (%v), want %q as jinja2.Template gives", tc.src, got, err, tc.want)
		}
	}
}
