package kustomize

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// A folder as the kubelet lays out a ConfigMap volume whose items have
// paths in subfolders: the files in a hidden folder of the time, "..data"
// linking to it, and a link per top-level name through "..data". The copy
// holds the files at their paths, and nothing of the hidden names.
func TestCopyFSOfAConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	hidden := filepath.Join(dir, "..2026_01_01_00_00_00.000000001")
	if err := os.MkdirAll(filepath.Join(hidden, "initialize"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"initialize/job.yaml": "kind: Job\n", "template-vars.yaml": "a: b\n"} {
		if err := os.WriteFile(filepath.Join(hidden, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, dest := range map[string]string{
		"..data":             filepath.Base(hidden),
		"initialize":         "..data/initialize",
		"template-vars.yaml": "..data/template-vars.yaml",
	} {
		if err := os.Symlink(dest, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	mem := filesys.MakeFsInMemory()
	if err := CopyFS(os.DirFS(dir), mem, "/base"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"/base/initialize/job.yaml": "kind: Job\n", "/base/template-vars.yaml": "a: b\n"} {
		got, err := mem.ReadFile(name)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q %v, want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"/base/..data", "/base/" + filepath.Base(hidden)} {
		if mem.Exists(name) {
			t.Errorf("%s was copied", name)
		}
	}
}

// A link to a parent folder is refused, not followed forever.
func TestCopyFSLinkLoop(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(".", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	if err := CopyFS(os.DirFS(dir), filesys.MakeFsInMemory(), "/base"); err == nil {
		t.Fatal("a link loop was copied")
	}
}
