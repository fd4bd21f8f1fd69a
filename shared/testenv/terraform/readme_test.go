package terraform

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var declared = regexp.MustCompile(`(?m)^(variable|output) "([^"]+)"`)

// TestReadmesListInputsAndOutputs fails when a module or example has an
// input or an output that its README does not name (as `name`, in its
// Inputs or Outputs table), or a README names one that is gone.
func TestReadmesListInputsAndOutputs(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append(append([]string{}, Kubernetes...), AWS...) {
		t.Run(d, func(t *testing.T) {
			dir := filepath.Join(root, "terraform", d)
			readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			tables := map[string]string{
				"variable": section(string(readme), "## Inputs"),
				"output":   section(string(readme), "## Outputs"),
			}
			names := map[string]map[string]bool{"variable": {}, "output": {}}
			files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range declared.FindAllStringSubmatch(string(src), -1) {
					names[m[1]][m[2]] = true
					if !strings.Contains(tables[m[1]], "| `"+m[2]+"` |") {
						t.Errorf("%s %q is not in the README's table", m[1], m[2])
					}
				}
			}
			row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
			for kind, table := range tables {
				for _, m := range row.FindAllStringSubmatch(table, -1) {
					if !names[kind][m[1]] {
						t.Errorf("the README's table names %s %q, which the module does not declare", kind, m[1])
					}
				}
			}
		})
	}
}

// section is the text of the README from heading to the next heading of
// the same level.
func section(readme, heading string) string {
	i := strings.Index(readme, heading+"\n")
	if i < 0 {
		return ""
	}
	rest := readme[i+len(heading)+1:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
