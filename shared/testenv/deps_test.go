package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rig is the import path of the test rig: everything below it exists for
// development and tests only.
const rig = "runboat.dev/shared/testenv"

// commands are the programs that run in production: the function and the
// jobs (a pattern of go list).
var commands = []string{"runboat.dev/functions/cmd/runboat", "runboat.dev/jobs/cmd/..."}

// TestRuntimeLinksNoTestCode checks that what the function and the jobs run
// links neither the standard package testing nor any package of the test
// rig, and that no package of the project among them imports a test helper
// of another project (a fake clientset, a .../testing package). The
// runtime is every package of shared outside testenv, and the function's
// and the jobs' commands with all they import.
//
// A third-party package may import a package named testing that is not the
// standard one: k8s.io/client-go/gentype, which every typed client uses,
// holds the fake client beside the real one and so links
// k8s.io/client-go/testing. That is not the project's to decide; the
// standard testing package is not linked through it.
func TestRuntimeLinksNoTestCode(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(root, "go.work")
	if _, err := os.Stat(work); err != nil {
		t.Fatalf("the project's go.work is needed to list the function and the jobs: %v", err)
	}
	var roots []string
	for _, pkg := range goList(t, root, work, "-f", "{{.ImportPath}}", "runboat.dev/shared/...") {
		if !underRig(pkg) {
			roots = append(roots, pkg)
		}
	}
	binaries := goList(t, root, work, append([]string{"-f", "{{.ImportPath}}"}, commands...)...)
	roots = append(roots, binaries...)
	imports := map[string][]string{}
	var project []string
	for _, line := range goList(t, root, work, append([]string{"-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, roots...)...) {
		fields := strings.Fields(line)
		imports[fields[0]] = fields[1:]
		if strings.HasPrefix(fields[0], "runboat.dev/") && !underRig(fields[0]) {
			project = append(project, fields[0])
		}
	}
	for _, r := range roots {
		if _, ok := imports[r]; !ok {
			t.Fatalf("go list -deps did not list %s", r)
		}
	}
	// how says through which packages a binary (else a root) reaches pkg.
	how := func(pkg string) string {
		if c, ok := chain(imports, binaries, pkg); ok {
			return c
		}
		c, _ := chain(imports, roots, pkg)
		return c
	}
	for _, pkg := range slices.Sorted(slices.Values(project)) {
		for _, imp := range imports[pkg] {
			switch {
			case imp == "testing":
				t.Errorf("%s imports testing (%s)", pkg, how(pkg))
			case underRig(imp):
				t.Errorf("%s imports the test rig %s (%s)", pkg, imp, how(pkg))
			case !strings.HasPrefix(imp, "runboat.dev/") && testHelper(imp):
				t.Errorf("%s imports the test helper %s (%s)", pkg, imp, how(pkg))
			}
		}
	}
	if _, ok := imports["testing"]; ok {
		t.Errorf("the runtime links testing, through %s", strings.Join(importers(imports, "testing"), ", "))
	}
}

// underRig tells whether pkg belongs to the test rig.
func underRig(pkg string) bool {
	return pkg == rig || strings.HasPrefix(pkg, rig+"/")
}

// testHelper tells whether pkg is by its name a test helper: a fake
// clientset or a .../testing package.
func testHelper(pkg string) bool {
	last := pkg[strings.LastIndex(pkg, "/")+1:]
	return last == "fake" || last == "testing"
}

// importers lists the packages that import pkg.
func importers(imports map[string][]string, pkg string) []string {
	var out []string
	for p, imps := range imports {
		if slices.Contains(imps, pkg) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// chain says how one of roots reaches pkg: root -> ... -> pkg; ok is false
// when none does.
func chain(imports map[string][]string, roots []string, pkg string) (string, bool) {
	prev := map[string]string{}
	var queue []string
	for _, r := range roots {
		if _, ok := imports[r]; ok {
			prev[r] = ""
			queue = append(queue, r)
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == pkg {
			path := []string{p}
			for q := prev[p]; q != ""; q = prev[q] {
				path = append([]string{q}, path...)
			}
			return strings.Join(path, " -> "), true
		}
		for _, imp := range imports[p] {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return pkg, false
}

// goList runs go list in the project's workspace and returns its lines.
func goList(t *testing.T, root, work string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	// The module's tests run with GOWORK=off; the function and the jobs are
	// in other modules of the workspace.
	cmd.Env = append(os.Environ(), "GOWORK="+work)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// packaging are the import path prefixes of what makes the artifacts: the
// release package and the libraries it alone uses.
var packaging = []string{"runboat.dev/shared/release", "github.com/google/go-containerregistry/", "golang.org/x/crypto/x509roots/"}

// TestRuntimeLinksNoPackaging checks that the function and the jobs do not
// link the code that packages them (an OCI image library has no business
// in a Lambda).
func TestRuntimeLinksNoPackaging(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(root, "go.work")
	for _, pkg := range goList(t, root, work, append([]string{"-deps", "-f", "{{.ImportPath}}"}, commands...)...) {
		for _, p := range packaging {
			if pkg == strings.TrimSuffix(p, "/") || strings.HasPrefix(pkg, p) {
				t.Errorf("the function or a job links %s", pkg)
			}
		}
	}
}
