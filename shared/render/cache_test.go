package render

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/benchfig"
)

// cacheFolders are the kubefiles folders the cache is checked on: the
// project's two layouts and runboat's format.
func cacheFolders(t *testing.T) map[string]fs.FS {
	t.Helper()
	out := map[string]fs.FS{"runboat-format": os.DirFS(jinjaKubefilesDir)}
	for _, name := range defaultKubefilesNames {
		out[name] = defaultKubefiles(t, name)
	}
	return out
}

// cacheBuilds are builds of every shape: a branch, pull requests, a
// SHA-256 commit, hostile branch and repo names.
func cacheBuilds(t *testing.T) []Vars {
	t.Helper()
	var out []Vars
	for _, r := range []struct {
		repo, branch string
		pr           int
		commit       string
	}{
		{"oca/mis-builder", "16.0", 0, "0123456789abcdef0123456789abcdef01234567"},
		{"OCA/mis-builder", "16.0", 42, "fedcba9876543210fedcba9876543210fedcba98"},
		{"acme/app", "feature/x.y-z", 1234567890, strings.Repeat("ab", 32)},
		{"acme/app-" + strings.Repeat("long", 20), hostile(200, "br"), 0, strings.Repeat("0", 40)},
		{"acme/app", "main", 0, strings.Repeat("9", 64)},
	} {
		ref, err := model.NewRef(r.repo, r.branch, r.pr, r.commit)
		if err != nil {
			t.Fatalf("NewRef(%q, %q): %v", r.repo, r.branch, err)
		}
		v := testVars(t)
		v.Name, v.Slug, v.Repo, v.TargetBranch, v.PR, v.Commit, v.Target = ref.Name(), ref.Slug(), ref.Repo, ref.TargetBranch, ref.PRString(), ref.Commit, ref.TargetKey()
		out = append(out, v)
	}
	return out
}

// The objects of a build from the cache are those of its direct render, in
// every mode of every folder, for builds of every shape, and the folders
// are kept rendered (not rendered directly each time).
func TestCacheRendersAsRender(t *testing.T) {
	builds := cacheBuilds(t)
	for name, fsys := range cacheFolders(t) {
		for _, mode := range []Mode{ModeDeployment, ModeInitialize, ModeCleanup, ModeStart, ModeStop} {
			if ok, err := HasMode(fsys, mode); err != nil || !ok {
				continue
			}
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				var c Cache
				for _, v := range builds {
					want, err := Render(fsys, mode, v)
					if err != nil {
						t.Fatalf("Render %s: %v", v.Name, err)
					}
					got, err := c.Render(name, fsys, mode, v)
					if err != nil {
						t.Fatalf("Cache.Render %s: %v", v.Name, err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("build %s: the cache's objects differ from the render's:\n%s", v.Name, sliceDiff(lines(t, want), lines(t, got)))
					}
				}
				if n := c.kept(); n == 0 {
					t.Errorf("no render kept: the folder is rendered directly each time")
				}
			})
		}
	}
}

func lines(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	return strings.Split(string(toYAML(t, objs)), "\n")
}

// A folder that splits a build value with a replacement's delimiter is
// rendered directly, and the result is still that of Render.
func TestCacheRendersDirectlyWhatSplitsValues(t *testing.T) {
	fsys := copyFolder(t, defaultKubefiles(t, "demo"))
	kust := fsys["deployment/kustomization.yaml"]
	if kust == nil {
		t.Fatal("demo kubefiles have no deployment/kustomization.yaml")
	}
	kust.Data = append(kust.Data, []byte(`
replacements:
- source:
    kind: ConfigMap
    name: runboat-vars
    fieldPath: data.target_branch
    options:
      delimiter: "/"
      index: 0
  targets:
  - select:
      kind: Deployment
    fieldPaths:
    - metadata.annotations.[runboat.dev/first-segment]
    options:
      create: true
`)...)
	var c Cache
	for _, v := range cacheBuilds(t)[2:3] { // feature/x.y-z
		want, err := Render(fsys, ModeDeployment, v)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		got, err := c.Render("split", fsys, ModeDeployment, v)
		if err != nil {
			t.Fatalf("Cache.Render: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the cache's objects differ from the render's:\n%s", sliceDiff(lines(t, want), lines(t, got)))
		}
		if dep, _, _ := SplitDeployment(got); dep.GetAnnotations()["runboat.dev/first-segment"] != "feature" {
			t.Errorf("first segment annotation %q, want feature", dep.GetAnnotations()["runboat.dev/first-segment"])
		}
	}
	if n := c.kept(); n != 0 {
		t.Errorf("%d renders kept of a folder that splits values, want none", n)
	}
}

// A folder that hashes a build value into a generated name gives the
// objects of Render, kept or not.
func TestCacheHashedGeneratedName(t *testing.T) {
	fsys := copyFolder(t, defaultKubefiles(t, "demo"))
	fsys["deployment/kustomization.yaml"].Data = []byte(`apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [deployment.yaml]
configMapGenerator:
- name: hashed
  literals: [build=placeholder]
replacements:
- source:
    kind: ConfigMap
    name: runboat-vars
    fieldPath: data.name
  targets:
  - select:
      kind: ConfigMap
      name: hashed
    fieldPaths:
    - data.build
`)
	var c Cache
	for _, v := range cacheBuilds(t) {
		want, err := Render(fsys, ModeDeployment, v)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		got, err := c.Render("hashed", fsys, ModeDeployment, v)
		if err != nil {
			t.Fatalf("Cache.Render: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("build %s: the cache's objects differ from the render's:\n%s", v.Name, sliceDiff(lines(t, want), lines(t, got)))
		}
	}
	t.Logf("renders kept: %d", c.kept())
}

// Invalid build values are refused with the render's error, and a folder
// that fails to render gives its error: nothing is kept of either.
func TestCacheErrors(t *testing.T) {
	fsys := defaultKubefiles(t, "demo")
	v := cacheBuilds(t)[0]
	bad := v
	bad.Commit = "not-a-sha"
	var c Cache
	_, wantErr := Render(fsys, ModeDeployment, bad)
	_, err := c.Render("demo", fsys, ModeDeployment, bad)
	if err == nil || wantErr == nil || err.Error() != wantErr.Error() {
		t.Errorf("invalid commit: cache error %v, render error %v", err, wantErr)
	}
	broken := copyFolder(t, fsys)
	broken["deployment/kustomization.yaml"].Data = []byte("resources: [missing.yaml]\n")
	_, err = c.Render("broken", broken, ModeDeployment, v)
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("broken folder: error %v, want one naming missing.yaml", err)
	}
	if _, err := c.Render("demo", fsys, ModeStart, v); !errors.Is(err, ErrModeNotFound) && err == nil {
		t.Errorf("missing mode: error %v", err)
	}
	if n := c.kept(); n != 0 {
		t.Errorf("%d renders kept after errors only, want none", n)
	}
}

// copyFolder copies fsys into a MapFS to edit.
func copyFolder(t *testing.T, fsys fs.FS) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		out[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkCacheRender renders the deployment mode of the default kubefiles
// through a Cache, and reports the figure render-cached-ratio (make bench):
// the cached render of the Odoo kubefiles against a direct one, timed in
// the same run.
func BenchmarkCacheRender(b *testing.B) {
	for _, name := range defaultKubefilesNames {
		b.Run(name, func(b *testing.B) {
			fsys := defaultKubefiles(b, name)
			v := testVars(b)
			var c Cache
			if _, err := c.Render(name, fsys, ModeDeployment, v); err != nil { // kept out of the timing
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Render(name, fsys, ModeDeployment, v); err != nil {
					b.Fatal(err)
				}
			}
			cached := b.Elapsed() / time.Duration(b.N)
			if name != "odoo" || b.N < 10 {
				return
			}
			start := time.Now()
			for range 20 {
				if _, err := Render(fsys, ModeDeployment, v); err != nil {
					b.Fatal(err)
				}
			}
			direct := time.Since(start) / 20
			benchfig.Report(b, "render-cached-ratio", float64(cached)/float64(time.Millisecond), "ms", float64(cached)/float64(direct), "direct-render")
		})
	}
}

func BenchmarkRender(b *testing.B) {
	for _, name := range defaultKubefilesNames {
		b.Run(name, func(b *testing.B) {
			fsys := defaultKubefiles(b, name)
			v := testVars(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(fsys, ModeDeployment, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
