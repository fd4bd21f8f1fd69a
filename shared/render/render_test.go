package render

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"runboat.dev/shared/model"
)

var update = flag.Bool("update", false, "rewrite the golden files of rendered kubefiles")

// kubefilesDir is the folder of the default kubefiles, relative to this
// package.
const kubefilesDir = "../../kubefiles"

var (
	defaultKubefilesNames = []string{"demo", "odoo"}
	requiredModes         = []Mode{ModeDeployment, ModeInitialize, ModeCleanup}
)

func defaultKubefiles(t testing.TB, name string) fs.FS {
	t.Helper()
	dir := filepath.Join(kubefilesDir, name)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("default kubefiles %s: %v", name, err)
	}
	return os.DirFS(dir)
}

// testVars are the variables of a pull request build.
func testVars(t testing.TB) Vars {
	t.Helper()
	ref, err := model.NewRef("OCA/mis-builder", "16.0", 42, "0123456789abcdef0123456789abcdef01234567")
	if err != nil {
		t.Fatal(err)
	}
	v := NewVars(ref)
	v.Namespace = "runboat-builds"
	v.Domain = "runboat.example.org"
	v.Image = "ghcr.io/oca/oca-ci/py3.10-odoo16.0:latest"
	v.Env = map[string]string{"PGHOST": "postgres.example.org", "PGUSER": "runboat"}
	v.SecretEnv = map[string]string{"PGPASSWORD": "not-a-secret"}
	v.TemplateVars = map[string]string{"storageClassName": "standard"}
	v.LastScaled = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	return v
}

func mustRender(t *testing.T, fsys fs.FS, mode Mode, vars Vars) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(fsys, mode, vars)
	if err != nil {
		t.Fatalf("Render(%s): %v", mode, err)
	}
	return objs
}

func toYAML(t *testing.T, objs []*unstructured.Unstructured) []byte {
	t.Helper()
	b, err := marshalYAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// marshalYAML marshals objects as a multi-document YAML stream.
func marshalYAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

func TestRenderGolden(t *testing.T) {
	for _, name := range defaultKubefilesNames {
		fsys := defaultKubefiles(t, name)
		for _, mode := range requiredModes {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				vars := testVars(t)
				if name == "demo" {
					vars.Image = "docker.io/library/busybox:1.37"
				}
				checkGolden(t, name+"-"+string(mode), toYAML(t, mustRender(t, fsys, mode, vars)))
			})
		}
	}
}

// checkGolden compares a render with its golden file,
// testdata/golden/<name>.yaml, first rewriting it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", "golden", name+".yaml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./render/ -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("render differs from %s (run go test ./render/ -update after checking the change):\n%s",
			golden, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}

// TestRenderContract checks, for every mode of every default kubefiles,
// what runboat relies on, independently of the golden files.
func TestRenderContract(t *testing.T) {
	for _, name := range defaultKubefilesNames {
		fsys := defaultKubefiles(t, name)
		for _, mode := range requiredModes {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				vars := testVars(t)
				objs := mustRender(t, fsys, mode, vars)
				checkContract(t, objs, mode, vars)
				checkTrust(t, objs, mode, vars)
			})
		}
	}
}

func checkContract(t *testing.T, objs []*unstructured.Unstructured, mode Mode, vars Vars) {
	t.Helper()
	if len(objs) == 0 {
		t.Fatal("no objects")
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		if o.GetNamespace() != vars.Namespace {
			t.Errorf("%s %s: namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		}
		if !strings.HasPrefix(o.GetName(), vars.Name+"-") {
			t.Errorf("%s %s: no build name prefix", o.GetKind(), o.GetName())
		}
		if got := o.GetLabels()[model.LabelBuild]; got != vars.Name {
			t.Errorf("%s %s: build label %q", o.GetKind(), o.GetName(), got)
		}
		if got := o.GetLabels()[model.LabelCommit]; got != vars.Commit {
			t.Errorf("%s %s: commit label %q", o.GetKind(), o.GetName(), got)
		}
		if got := o.GetLabels()[model.LabelTarget]; got != vars.Target || got == "" {
			t.Errorf("%s %s: target label %q, want %q", o.GetKind(), o.GetName(), got, vars.Target)
		}
		if tmpl := podTemplateLabels(t, o); tmpl != nil {
			for k, v := range map[string]string{model.LabelBuild: vars.Name, model.LabelCommit: vars.Commit, model.LabelTarget: vars.Target} {
				if tmpl[k] != v {
					t.Errorf("%s %s: pod template label %s=%q, want %q", o.GetKind(), o.GetName(), k, tmpl[k], v)
				}
			}
		}
		if sel, found, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels"); found && sel[model.LabelBuild] != vars.Name {
			t.Errorf("%s %s: selector build label %q", o.GetKind(), o.GetName(), sel[model.LabelBuild])
		}
		if sel, found, _ := unstructured.NestedStringMap(o.Object, "spec", "selector"); found && o.GetKind() == "Service" && sel[model.LabelBuild] != vars.Name {
			t.Errorf("Service %s: selector build label %q", o.GetName(), sel[model.LabelBuild])
		}
		if o.GetKind() == "Job" {
			kind := string(mode.jobKind())
			if got := o.GetLabels()[model.LabelJobKind]; got != kind {
				t.Errorf("Job %s: job-kind label %q, want %q", o.GetName(), got, kind)
			}
			if got := podTemplateLabels(t, o)[model.LabelJobKind]; got != kind {
				t.Errorf("Job %s: pod template job-kind label %q, want %q", o.GetName(), got, kind)
			}
		} else if _, ok := o.GetLabels()[model.LabelJobKind]; ok {
			t.Errorf("%s %s: unexpected job-kind label", o.GetKind(), o.GetName())
		}
		if o.GetKind() != "Deployment" && len(o.GetFinalizers()) > 0 {
			t.Errorf("%s %s: unexpected finalizers %v", o.GetKind(), o.GetName(), o.GetFinalizers())
		}
	}
	for _, k := range []string{"ConfigMap", "Secret"} {
		if kinds[k] == 0 {
			t.Errorf("no %s", k)
		}
	}
	switch mode {
	case ModeDeployment:
		if kinds["Deployment"] != 1 {
			t.Fatalf("%d Deployments", kinds["Deployment"])
		}
		d := objs[len(objs)-1]
		if d.GetKind() != "Deployment" {
			t.Fatalf("last object is a %s, want the Deployment", d.GetKind())
		}
		checkDeployment(t, d, vars)
		if kinds["Ingress"] == 0 || kinds["Service"] == 0 {
			t.Errorf("no Ingress or no Service: %v", kinds)
		}
	case ModeInitialize, ModeCleanup:
		if kinds["Job"] != 1 || kinds["Deployment"] != 0 {
			t.Errorf("kinds %v, want one Job and no Deployment", kinds)
		}
	}
	checkGenerated(t, objs, vars)
}

func podTemplateLabels(t *testing.T, o *unstructured.Unstructured) map[string]string {
	t.Helper()
	l, found, err := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
	if err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	if !found {
		return nil
	}
	return l
}

func checkDeployment(t *testing.T, d *unstructured.Unstructured, vars Vars) {
	t.Helper()
	want := map[string]string{
		model.AnnotationRepo:         vars.Repo,
		model.AnnotationTargetBranch: vars.TargetBranch,
		model.AnnotationPR:           vars.PR,
		model.AnnotationCommit:       vars.Commit,
		model.AnnotationInitStatus:   string(vars.InitStatus),
		model.AnnotationLastScaled:   vars.LastScaled.UTC().Format(time.RFC3339),
	}
	got := d.GetAnnotations()
	for k, v := range want {
		gv, ok := got[k]
		if !ok || gv != v {
			t.Errorf("Deployment annotation %s = %q (present %v), want %q", k, gv, ok, v)
		}
	}
	if _, err := time.Parse(time.RFC3339, got[model.AnnotationLastScaled]); err != nil {
		t.Errorf("last-scaled is not RFC 3339: %v", err)
	}
	replicas, found, err := unstructured.NestedInt64(d.Object, "spec", "replicas")
	if err != nil || !found || replicas != 0 {
		t.Errorf("Deployment replicas %d (found %v, %v), want 0", replicas, found, err)
	}
	if f := d.GetFinalizers(); len(f) != 1 || f[0] != model.Finalizer {
		t.Errorf("Deployment finalizers %v, want [%s]", f, model.Finalizer)
	}
	if d.GetLabels()[model.LabelCommit] != vars.Commit {
		t.Errorf("Deployment commit label %q", d.GetLabels()[model.LabelCommit])
	}
}

// checkGenerated checks the build variables and env objects.
func checkGenerated(t *testing.T, objs []*unstructured.Unstructured, vars Vars) {
	t.Helper()
	varsCM := find(t, objs, "ConfigMap", vars.Name+"-"+VarsConfigMap)
	data, _, _ := unstructured.NestedStringMap(varsCM.Object, "data")
	wantVars := map[string]string{
		VarName:         vars.Name,
		VarSlug:         vars.Slug,
		VarDomain:       vars.Domain,
		VarHost:         vars.Slug + "." + vars.Domain,
		VarRepo:         vars.Repo,
		VarTargetBranch: vars.TargetBranch,
		VarPR:           vars.PR,
		VarCommit:       vars.Commit,
	}
	for k, v := range wantVars {
		if data[k] != v {
			t.Errorf("vars %s = %q, want %q", k, data[k], v)
		}
	}
	for k, v := range vars.TemplateVars {
		if data[k] != v {
			t.Errorf("template var %s = %q, want %q", k, data[k], v)
		}
	}

	envCM := find(t, objs, "ConfigMap", vars.Name+"-"+EnvConfigMap)
	env, _, _ := unstructured.NestedStringMap(envCM.Object, "data")
	if !maps.Equal(env, vars.Env) && (len(env) != 0 || len(vars.Env) != 0) {
		t.Errorf("env ConfigMap %v, want %v", env, vars.Env)
	}

	secret := find(t, objs, "Secret", vars.Name+"-"+SecretEnvSecret)
	got, err := secretData(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, vars.SecretEnv) && (len(got) != 0 || len(vars.SecretEnv) != 0) {
		t.Errorf("secret env %v, want %v", got, vars.SecretEnv)
	}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

// checkTrust checks what the Trust section of the design asks of default
// kubefiles: no service account token in build pods, limits on every
// container, only the build's own env reaching the pods. The build runs the
// build image.
func checkTrust(t *testing.T, objs []*unstructured.Unstructured, mode Mode, vars Vars) {
	t.Helper()
	usesBuildImage := false
	for _, o := range objs {
		spec, found, err := unstructured.NestedMap(o.Object, "spec", "template", "spec")
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			continue
		}
		id := o.GetKind() + " " + o.GetName()
		if v, ok := spec["automountServiceAccountToken"].(bool); !ok || v {
			t.Errorf("%s: automountServiceAccountToken is not false", id)
		}
		if sa, _ := spec["serviceAccountName"].(string); sa != "" {
			t.Errorf("%s: service account %q", id, sa)
		}
		for _, field := range []string{"containers", "initContainers"} {
			containers, _, _ := unstructured.NestedSlice(spec, field)
			for _, c := range containers {
				cm := c.(map[string]any)
				cid := fmt.Sprintf("%s container %v", id, cm["name"])
				if cm["image"] == vars.Image {
					usesBuildImage = true
				}
				if strings.Contains(fmt.Sprint(cm["image"]), ImagePlaceholder) {
					t.Errorf("%s: placeholder image left: %v", cid, cm["image"])
				}
				for _, kind := range []string{"requests", "limits"} {
					for _, res := range []string{"cpu", "memory"} {
						if _, found, _ := unstructured.NestedFieldNoCopy(cm, "resources", kind, res); !found {
							t.Errorf("%s: no %s %s", cid, res, kind)
						}
					}
				}
				checkEnvRefs(t, cid, cm, vars)
			}
		}
	}
	if mode == ModeDeployment && !usesBuildImage {
		t.Errorf("no container uses the build image %s", vars.Image)
	}
}

// checkEnvRefs checks that a container takes ConfigMaps and Secrets of the
// build only.
func checkEnvRefs(t *testing.T, cid string, c map[string]any, vars Vars) {
	t.Helper()
	envFrom, _, _ := unstructured.NestedSlice(c, "envFrom")
	for _, e := range envFrom {
		for _, ref := range []string{"configMapRef", "secretRef"} {
			if name, found, _ := unstructured.NestedString(e.(map[string]any), ref, "name"); found && !strings.HasPrefix(name, vars.Name+"-") {
				t.Errorf("%s: envFrom %s %q is not the build's", cid, ref, name)
			}
		}
	}
	env, _, _ := unstructured.NestedSlice(c, "env")
	for _, e := range env {
		for _, ref := range []string{"configMapKeyRef", "secretKeyRef"} {
			if name, found, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", ref, "name"); found && !strings.HasPrefix(name, vars.Name+"-") {
				t.Errorf("%s: env %s %q is not the build's", cid, ref, name)
			}
		}
	}
}

func TestRenderTemplateVarsReachDemoPods(t *testing.T) {
	fsys := defaultKubefiles(t, "demo")
	cases := []struct {
		mode        Mode
		pod         string
		annotations []string
	}{
		{ModeDeployment, "web", []string{"ready-delay", "waiting-reason"}},
		{ModeInitialize, "initialize", []string{"fail", "delay", "waiting-reason"}},
		{ModeCleanup, "cleanup", []string{"fail", "delay", "waiting-reason"}},
	}
	for _, c := range cases {
		t.Run(string(c.mode), func(t *testing.T) {
			// By default, no kwok annotation at all: the local cluster's
			// stages test their presence.
			vars := testVars(t)
			objs := mustRender(t, fsys, c.mode, vars)
			for k, v := range podAnnotations(t, objs) {
				if strings.HasPrefix(k, "runboat.dev/kwok-") {
					t.Errorf("default pod annotation %s=%q", k, v)
				}
			}
			// Each template var set alone gives its annotation alone.
			for i, name := range c.annotations {
				vars.TemplateVars = map[string]string{
					c.pod + "_kwok_" + strings.ReplaceAll(name, "-", "_"): fmt.Sprintf("value %d", i),
				}
				objs = mustRender(t, fsys, c.mode, vars)
				var got []string
				for k, v := range podAnnotations(t, objs) {
					if strings.HasPrefix(k, "runboat.dev/kwok-") {
						got = append(got, k+"="+v)
					}
				}
				want := fmt.Sprintf("runboat.dev/kwok-%s=value %d", name, i)
				if len(got) != 1 || got[0] != want {
					t.Errorf("pod annotations %v, want [%s]", got, want)
				}
			}
		})
	}
}

// podAnnotations returns the pod template annotations of the only object
// that has some.
func podAnnotations(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	var result map[string]string
	n := 0
	for _, o := range objs {
		a, found, err := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "annotations")
		if err != nil {
			t.Fatal(err)
		}
		if found {
			result = a
			n++
		}
	}
	if n > 1 {
		t.Fatalf("%d objects with pod template annotations, want at most 1", n)
	}
	return result
}

func TestRenderImage(t *testing.T) {
	fsys := defaultKubefiles(t, "demo")
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, image := range []string{
		"busybox",
		"busybox:1.36",
		"docker.io/library/busybox:1.36.1-musl",
		"localhost:5000/demo",
		"localhost:5000/team/demo:v2",
		"registry.example.org:443/a/b/c@" + digest,
		"ghcr.io/oca/oca-ci:py3.10-odoo16.0@" + digest,
	} {
		t.Run(image, func(t *testing.T) {
			vars := testVars(t)
			vars.Image = image
			objs := mustRender(t, fsys, ModeDeployment, vars)
			d := objs[len(objs)-1]
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			if got := containers[0].(map[string]any)["image"]; got != image {
				t.Errorf("image %v, want %s", got, image)
			}
		})
	}
}

func TestParseImage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("0f", 32)
	good := map[string]imageRef{
		"busybox":                      {Name: "busybox"},
		"busybox:1.36":                 {Name: "busybox", Tag: "1.36"},
		"localhost:5000/x":             {Name: "localhost:5000/x"},
		"localhost:5000/x:y":           {Name: "localhost:5000/x", Tag: "y"},
		"a.b/c/d@" + digest:            {Name: "a.b/c/d", Digest: digest},
		"a.b:1/c:t@" + digest:          {Name: "a.b:1/c", Tag: "t", Digest: digest},
		"ghcr.io/oca/oca-ci:py3.10-16": {Name: "ghcr.io/oca/oca-ci", Tag: "py3.10-16"},
	}
	for ref, want := range good {
		got, err := parseImage(ref)
		if err != nil || got != want {
			t.Errorf("parseImage(%q) = %+v, %v; want %+v", ref, got, err, want)
		}
	}
	for _, ref := range []string{
		"", "Busybox", "busybox:", "busybox@", "busybox@sha256:zz", "busybox:a b",
		"busybox\n:1", "a//b", "/a", "a/", "busybox:1@" + digest + "@" + digest,
		"busybox:-x", "x:" + strings.Repeat("t", 129),
	} {
		if got, err := parseImage(ref); err == nil {
			t.Errorf("parseImage(%q) = %+v, want an error", ref, got)
		}
	}
}

func TestHasMode(t *testing.T) {
	for _, name := range defaultKubefilesNames {
		fsys := defaultKubefiles(t, name)
		for _, mode := range []Mode{ModeDeployment, ModeInitialize, ModeCleanup, ModeStart, ModeStop} {
			got, err := HasMode(fsys, mode)
			if err != nil {
				t.Fatalf("%s: HasMode(%s): %v", name, mode, err)
			}
			if want := !mode.Optional(); got != want {
				t.Errorf("%s: HasMode(%s) = %v, want %v", name, mode, got, want)
			}
		}
	}
	if _, err := HasMode(fstest.MapFS{}, Mode("deploy")); err == nil {
		t.Error("HasMode of an unknown mode: no error")
	}
	noKustomization := fstest.MapFS{"start/service.yaml": {Data: []byte("kind: Service\n")}}
	if got, err := HasMode(noKustomization, ModeStart); err == nil || got {
		t.Errorf("HasMode of a folder without kustomization = %v, %v; want an error", got, err)
	}
	notAFolder := fstest.MapFS{"start": {Data: []byte("x")}}
	if got, err := HasMode(notAFolder, ModeStart); err == nil || got {
		t.Errorf("HasMode of a file = %v, %v; want an error", got, err)
	}
}

func TestRenderMissingMode(t *testing.T) {
	fsys := defaultKubefiles(t, "demo")
	for _, mode := range []Mode{ModeStart, ModeStop} {
		objs, err := Render(fsys, mode, testVars(t))
		if err == nil {
			t.Fatalf("Render(%s) = %d objects, want an error", mode, len(objs))
		}
		if !errors.Is(err, ErrModeNotFound) {
			t.Errorf("Render(%s) error %v does not wrap ErrModeNotFound", mode, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", mode)) {
			t.Errorf("Render(%s) error %q does not name the mode", mode, err)
		}
	}
	if _, err := Render(fsys, Mode("deploy"), testVars(t)); err == nil || errors.Is(err, ErrModeNotFound) {
		t.Errorf("Render of an unknown mode: %v, want an error that is not ErrModeNotFound", err)
	}
}

// minimalJob is a Job as a mode of test kubefiles would hold.
const minimalJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: initialize
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: c
          image: runboat-image
`

// deploymentSpec is the spec of the Deployments of test kubefiles.
const deploymentSpec = `  selector:
    matchLabels:
      app: x
  template:
    metadata:
      labels:
        app: x
    spec:
      containers:
        - name: c
          image: runboat-image
`

// minimalDeployment is a Deployment named %s as a mode of test kubefiles
// would hold.
const minimalDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
` + deploymentSpec

func TestRenderInvalidKubefiles(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	cases := []struct {
		name string
		mode Mode
		fsys fstest.MapFS
		want string // in the error, beside the mode
	}{
		{
			name: "unknown field",
			mode: ModeDeployment,
			fsys: fstest.MapFS{"deployment/kustomization.yaml": file("resourcez:\n  - deployment.yaml\n")},
			want: "resourcez",
		},
		{
			name: "missing resource",
			mode: ModeInitialize,
			fsys: fstest.MapFS{"initialize/kustomization.yaml": file("resources:\n  - job.yaml\n")},
			want: "job.yaml",
		},
		{
			name: "not YAML",
			mode: ModeCleanup,
			fsys: fstest.MapFS{"cleanup/kustomization.yaml": file("resources: [\n")},
			want: "cleanup/kustomization.yaml",
		},
		{
			name: "bad kind",
			mode: ModeCleanup,
			fsys: fstest.MapFS{"cleanup/kustomization.yaml": file("kind: Deployment\n")},
			want: "Deployment",
		},
		{
			name: "file outside the kustomization root",
			mode: ModeInitialize,
			fsys: fstest.MapFS{
				"initialize/kustomization.yaml": file("resources:\n  - ../common/job.yaml\n"),
				"common/job.yaml":               file(minimalJob),
			},
			want: "job.yaml",
		},
		{
			name: "replacement source missing",
			mode: ModeInitialize,
			fsys: fstest.MapFS{
				"initialize/kustomization.yaml": file(`kind: Component
apiVersion: kustomize.config.k8s.io/v1alpha1
resources: [job.yaml]
replacements:
  - source: {kind: ConfigMap, name: runboat-vars, fieldPath: data.no_such_var}
    targets:
      - select: {kind: Job}
        fieldPaths: [metadata.annotations.x]
        options: {create: true}
`),
				"initialize/job.yaml": file(minimalJob),
			},
			want: "no_such_var",
		},
		{
			name: "two Deployments",
			mode: ModeDeployment,
			fsys: fstest.MapFS{
				"deployment/kustomization.yaml": file("resources: [a.yaml, b.yaml]\n"),
				"deployment/a.yaml":             file(fmt.Sprintf(minimalDeployment, "a")),
				"deployment/b.yaml":             file(fmt.Sprintf(minimalDeployment, "b")),
			},
			want: "2 Deployments",
		},
		{
			name: "Deployment outside deployment mode",
			mode: ModeInitialize,
			fsys: fstest.MapFS{
				"initialize/kustomization.yaml": file("resources: [a.yaml, job.yaml]\n"),
				"initialize/a.yaml":             file(fmt.Sprintf(minimalDeployment, "a")),
				"initialize/job.yaml":           file(minimalJob),
			},
			want: "1 Deployments, want none",
		},
		{
			name: "no Job",
			mode: ModeCleanup,
			fsys: fstest.MapFS{
				"cleanup/kustomization.yaml": file("resources: [cm.yaml]\n"),
				"cleanup/cm.yaml":            file("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
			},
			want: "0 Jobs",
		},
		{
			name: "cluster-scoped object",
			mode: ModeInitialize,
			fsys: fstest.MapFS{
				"initialize/kustomization.yaml": file("resources: [job.yaml, role.yaml]\n"),
				"initialize/job.yaml":           file(minimalJob),
				"initialize/role.yaml":          file("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: x\n"),
			},
			want: "cluster-scoped",
		},
		{
			name: "name too long for a Job",
			mode: ModeInitialize,
			fsys: fstest.MapFS{
				"initialize/kustomization.yaml": file("resources: [job.yaml]\n"),
				"initialize/job.yaml":           file(strings.Replace(minimalJob, "name: initialize", "name: "+strings.Repeat("j", 60), 1)),
			},
			want: "invalid name",
		},
		{
			name: "template vars not strings",
			mode: ModeInitialize,
			fsys: fstest.MapFS{
				"template-vars.yaml":            file("answer: 42\n"),
				"initialize/kustomization.yaml": file("resources: [job.yaml]\n"),
				"initialize/job.yaml":           file(minimalJob),
			},
			want: TemplateVarsFile,
		},
		{
			name: "template var named as a build variable",
			mode: ModeInitialize,
			fsys: fstest.MapFS{
				"template-vars.yaml":            file("host: example.org\n"),
				"initialize/kustomization.yaml": file("resources: [job.yaml]\n"),
				"initialize/job.yaml":           file(minimalJob),
			},
			want: `"host"`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, err := Render(c.fsys, c.mode, testVars(t))
			if err == nil {
				t.Fatalf("Render = %d objects, want an error", len(objs))
			}
			if errors.Unwrap(err) == nil {
				t.Errorf("error %q wraps nothing", err)
			}
			if errors.Is(err, ErrModeNotFound) {
				t.Errorf("error %q wraps ErrModeNotFound", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("mode %q", c.mode)) {
				t.Errorf("error %q does not name the mode %s", msg, c.mode)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not mention %q", msg, c.want)
			}
		})
	}
}

// TestRenderMinimalBase checks that a mode may be a plain kustomize base
// (kind Kustomization) rather than a Component.
func TestRenderMinimalBase(t *testing.T) {
	fsys := fstest.MapFS{
		"initialize/kustomization.yaml": {Data: []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../common]\n")},
		"common/kustomization.yaml":     {Data: []byte("resources: [job.yaml]\n")},
		"common/job.yaml":               {Data: []byte(minimalJob)},
	}
	vars := testVars(t)
	objs := mustRender(t, fsys, ModeInitialize, vars)
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	want := []string{
		"Secret/" + vars.Name + "-runboat-secret-env",
		"ConfigMap/" + vars.Name + "-runboat-env",
		"ConfigMap/" + vars.Name + "-runboat-vars",
		"Job/" + vars.Name + "-initialize",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("objects %v, want %v", names, want)
	}
	checkContract(t, objs, ModeInitialize, vars)
}

func TestRenderInvalidVars(t *testing.T) {
	fsys := defaultKubefiles(t, "demo")
	vars := testVars(t)
	vars.Name = "Not_A_Label"
	vars.Namespace = ""
	vars.Domain = "bad domain"
	vars.Image = "Bad Image"
	vars.PR = "12a"
	vars.Commit = "abc"
	vars.Target = "not a label value"
	vars.Env = map[string]string{"BAD KEY": "x"}
	vars.SecretEnv = map[string]string{"K": "\xff"}
	vars.InitStatus = "done"
	vars.LastScaled = time.Time{}
	_, err := Render(fsys, ModeDeployment, vars)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"build name", "namespace", "build domain", "image", "pr", "commit", "target", `"BAD KEY"`, `"K"`, "init status", "last-scaled"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report the %s: %v", want, err)
		}
	}
	// Init status and last-scaled time only matter to the Deployment.
	vars = testVars(t)
	vars.InitStatus = ""
	vars.LastScaled = time.Time{}
	if _, err := Render(fsys, ModeInitialize, vars); err != nil {
		t.Errorf("initialize without init status nor last-scaled time: %v", err)
	}
}

func TestRenderBranchBuild(t *testing.T) {
	fsys := defaultKubefiles(t, "demo")
	ref, err := model.NewRef("oca/mis-builder", "16.0", 0, "0123456789abcdef0123456789abcdef01234567")
	if err != nil {
		t.Fatal(err)
	}
	vars := testVars(t)
	vars.Name, vars.Slug, vars.PR, vars.Target = ref.Name(), ref.Slug(), ref.PRString(), ref.TargetKey()
	objs := mustRender(t, fsys, ModeDeployment, vars)
	d := objs[len(objs)-1]
	pr, ok := d.GetAnnotations()[model.AnnotationPR]
	if !ok || pr != "" {
		t.Errorf("runboat/pr = %q (present %v), want present and empty", pr, ok)
	}
	checkContract(t, objs, ModeDeployment, vars)
}

// secretData decodes the data of a Secret.
func secretData(s *unstructured.Unstructured) (map[string]string, error) {
	data, _, err := unstructured.NestedStringMap(s.Object, "data")
	if err != nil {
		return nil, err
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(s.Object, "stringData"); found {
		return nil, errors.New("secret has stringData")
	}
	out := make(map[string]string, len(data))
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("secret key %s: %w", k, err)
		}
		out[k] = string(b)
	}
	return out, nil
}

// TestRenderConcurrent renders from several goroutines, as a function
// instance may; run with -race to check that kustomize's global state is
// guarded.
func TestRenderConcurrent(t *testing.T) {
	t.Run("odoo", func(t *testing.T) { checkConcurrentRenders(t, defaultKubefiles(t, "odoo")) })
	t.Run("runboat-format", func(t *testing.T) { checkConcurrentRenders(t, os.DirFS(jinjaKubefilesDir)) })
}

// checkConcurrentRenders renders the deployment mode of fsys four times at
// once: the same objects as a render alone.
func checkConcurrentRenders(t *testing.T, fsys fs.FS) {
	vars := testVars(t)
	want := toYAML(t, mustRender(t, fsys, ModeDeployment, vars))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			objs, err := Render(fsys, ModeDeployment, vars)
			if err != nil {
				t.Error(err)
				return
			}
			got, err := marshalYAML(objs)
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(got, want) {
				t.Error("concurrent renders differ")
			}
		})
	}
	wg.Wait()
}

// TestRenderOverridesKubefiles checks that what runboat relies on wins over
// what kubefiles say.
func TestRenderOverridesKubefiles(t *testing.T) {
	deployment := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels:
    runboat/build: someone-else
    runboat/commit: "0000"
  annotations:
    runboat/init-status: succeeded
    runboat/repo: other/repo
    example.org/kept: "yes"
  finalizers:
    - example.org/kept
spec:
  replicas: 3
` + strings.Replace(deploymentSpec, "image: runboat-image", "image: runboat-image:ignored-tag", 1)
	fsys := fstest.MapFS{
		"deployment/kustomization.yaml": {Data: []byte("resources: [deployment.yaml]\nnamespace: elsewhere\n")},
		"deployment/deployment.yaml":    {Data: []byte(deployment)},
	}
	vars := testVars(t)
	vars.InitStatus = model.InitFailed
	objs := mustRender(t, fsys, ModeDeployment, vars)
	d := find(t, objs, "Deployment", vars.Name+"-app")
	if d.GetNamespace() != vars.Namespace {
		t.Errorf("namespace %q, want %q", d.GetNamespace(), vars.Namespace)
	}
	for k, v := range map[string]string{model.LabelBuild: vars.Name, model.LabelCommit: vars.Commit} {
		if got := d.GetLabels()[k]; got != v {
			t.Errorf("label %s=%q, want %q", k, got, v)
		}
	}
	for k, v := range map[string]string{
		model.AnnotationInitStatus: string(model.InitFailed),
		model.AnnotationRepo:       vars.Repo,
		"example.org/kept":         "yes",
	} {
		if got := d.GetAnnotations()[k]; got != v {
			t.Errorf("annotation %s=%q, want %q", k, got, v)
		}
	}
	if replicas, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); replicas != 0 {
		t.Errorf("replicas %d, want 0", replicas)
	}
	if f := d.GetFinalizers(); !slices.Contains(f, model.Finalizer) || !slices.Contains(f, "example.org/kept") {
		t.Errorf("finalizers %v, want %s added to the kubefiles' own", f, model.Finalizer)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if got := containers[0].(map[string]any)["image"]; got != vars.Image {
		t.Errorf("image %v, want %s", got, vars.Image)
	}
}

func TestSplitDeployment(t *testing.T) {
	obj := func(apiVersion, kind, name string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name},
		}}
	}
	svc, dep, other := obj("v1", "Service", "s"), obj("apps/v1", "Deployment", "d"), obj("example.org/v1", "Deployment", "x")
	gotDep, rest, err := SplitDeployment([]*unstructured.Unstructured{svc, other, dep})
	if err != nil || gotDep != dep || len(rest) != 2 || rest[0] != svc || rest[1] != other {
		t.Errorf("SplitDeployment = %v, %v, %v; want the apps/v1 Deployment and the two others", gotDep, rest, err)
	}
	for name, objs := range map[string][]*unstructured.Unstructured{
		"no Deployment":   {svc, other},
		"two Deployments": {dep, obj("apps/v1", "Deployment", "e")},
	} {
		if _, _, err := SplitDeployment(objs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
