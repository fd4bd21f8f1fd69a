package manifests_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"runboat.dev/shared/config"
	"runboat.dev/shared/testenv/manifests"
)

// The README's example overlay: YAML blocks whose first line names the file
// ("# overlay/NAME"), and blocks of more patches for it ("# in
// overlay/kustomization.yaml").
const (
	overlayFileMarker    = "# overlay/"
	overlayPatchesMarker = "# in overlay/kustomization.yaml"
	readmeNamespace      = "runboat-builds"
)

// readmeBlocks returns the fenced blocks of the README in the language
// lang ("yaml", "sh"), unindented.
func readmeBlocks(t *testing.T, dir, lang string) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		blocks []string
		cur    []string
		indent string
		in     bool
	)
	for line := range strings.Lines(string(readme)) {
		line = strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case !in && trimmed == "```"+lang:
			in, cur, indent = true, nil, line[:len(line)-len(trimmed)]
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, strings.TrimPrefix(line, indent))
		}
	}
	return blocks
}

// readmeBlock returns the README's block in lang whose first line is first.
func readmeBlock(t *testing.T, dir, lang, first string) (string, bool) {
	t.Helper()
	for _, b := range readmeBlocks(t, dir, lang) {
		if line, _, _ := strings.Cut(b, "\n"); line == first {
			return b, true
		}
	}
	return "", false
}

// writeREADMEOverlay writes the README's example overlay, its extra patches
// included, beside a link to the manifests folder in a temporary folder,
// with the namespace ns, and returns the overlay's folder.
func writeREADMEOverlay(t *testing.T, ns string) string {
	t.Helper()
	dir, err := manifests.Dir()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	var morePatches []types.Patch
	for _, b := range readmeBlocks(t, dir, "yaml") {
		first, _, _ := strings.Cut(b, "\n")
		switch {
		case strings.HasPrefix(first, overlayPatchesMarker):
			var k types.Kustomization
			if err := yaml.UnmarshalStrict([]byte(b), &k); err != nil {
				t.Fatalf("README: patches block: %v", err)
			}
			morePatches = append(morePatches, k.Patches...)
		case strings.HasPrefix(first, overlayFileMarker):
			files[strings.TrimPrefix(first, overlayFileMarker)] = b
		}
	}
	kust, ok := files["kustomization.yaml"]
	if !ok || len(files) < 2 || len(morePatches) == 0 {
		t.Fatalf("README: want the example overlay's kustomization.yaml, its other files and more patches; got files %v and %d patches", slices.Sorted(maps.Keys(files)), len(morePatches))
	}
	var k types.Kustomization
	if err := yaml.UnmarshalStrict([]byte(kust), &k); err != nil {
		t.Fatalf("README: overlay/kustomization.yaml: %v", err)
	}
	if k.Namespace != readmeNamespace {
		t.Fatalf("README: the example overlay's namespace is %q, want %q", k.Namespace, readmeNamespace)
	}
	k.Namespace = ns
	k.Patches = append(k.Patches, morePatches...)
	b, err := yaml.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	files["kustomization.yaml"] = string(b)

	tmp := t.TempDir()
	if err := os.Symlink(dir, filepath.Join(tmp, "manifests")); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(tmp, "overlay")
	if err := os.Mkdir(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(overlay, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return overlay
}

// TestREADMEOverlay renders the README's example overlay, as kubectl apply
// -k would, and checks that it does what the README says.
func TestREADMEOverlay(t *testing.T) {
	overlay := writeREADMEOverlay(t, readmeNamespace)
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		t.Fatalf("the README's overlay does not render: %v", err)
	}
	cronJobs := map[string]*batchv1.CronJob{}
	var cm *corev1.ConfigMap
	for _, res := range resMap.Resources() {
		if ns := res.GetNamespace(); ns != readmeNamespace {
			t.Errorf("%s: namespace %q, want %q", res.CurId(), ns, readmeNamespace)
		}
		m, err := res.Map()
		if err != nil {
			t.Fatal(err)
		}
		switch res.GetKind() {
		case "CronJob":
			cj := &batchv1.CronJob{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, cj); err != nil {
				t.Fatal(err)
			}
			cronJobs[cj.Name] = cj
		case "ConfigMap":
			cm = &corev1.ConfigMap{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(cronJobs) != len(manifests.CronJobs) || cm == nil {
		t.Fatalf("got %d CronJobs and ConfigMap %v, want %d and one", len(cronJobs), cm != nil, len(manifests.CronJobs))
	}
	for name, cj := range cronJobs {
		if img := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/runboat-jobs:v1.0.0" {
			t.Errorf("CronJob %s: image %q, want the overlay's", name, img)
		}
	}
	if s := cronJobs[manifests.CronJobStopper].Spec.Schedule; s != "*/2 * * * *" {
		t.Errorf("stopper schedule %q, want the README's */2", s)
	}
	if args := cronJobs[manifests.CronJobInitializer].Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args; !slices.Equal(args, []string{"--linger=50s"}) {
		t.Errorf("initializer args %q, want the README's --linger", args)
	}
	// The overlay's settings are merged over the example ones.
	if cm.Data["RUNBOAT_BUILD_DOMAIN"] != "runboat.example.org" || cm.Data["RUNBOAT_MAX_STARTED"] != "20" || cm.Data["RUNBOAT_MAX_DEPLOYED"] == "" {
		t.Errorf("ConfigMap data %v: want the overlay's settings over the base's", cm.Data)
	}
	environ := map[string]string{"RUNBOAT_BUILD_NAMESPACE": readmeNamespace}
	for k, v := range cm.Data {
		environ[k] = v
	}
	var cfg jobsConfig
	if err := config.Load(environ, &cfg); err != nil {
		t.Errorf("the README's configuration is invalid: %v", err)
	}
}
