package terraform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryModuleIsChecked fails when terraform/ has a module or example
// that the checks below do not name.
func TestEveryModuleIsChecked(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkListed(filepath.Join(root, "terraform")); err != nil {
		t.Fatal(err)
	}
}

// TestFormat is `tofu fmt -check` of terraform/, which writes nothing.
func TestFormat(t *testing.T) {
	tf := FromEnv(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tf.Run(root, "fmt", "-check", "-recursive", "-diff", "-no-color", "terraform"); err != nil {
		t.Fatalf("terraform/ is not formatted (run `tofu fmt -recursive terraform`): %v", err)
	}
}

// TestFormatFailsWhenUnformatted shows that the format check catches a
// badly laid out file.
func TestFormatFailsWhenUnformatted(t *testing.T) {
	tf := FromEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte("variable \"x\" {\ntype=string\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tf.Run(dir, "fmt", "-check", "-recursive", "-no-color", "."); err == nil {
		t.Fatal("fmt -check passed on an unformatted file")
	}
}

// TestValidate initialises every module and example that needs only the
// kubernetes provider from the mirror, and validates it.
func TestValidate(t *testing.T) {
	tf := FromEnv(t)
	root := Copy(t)
	for _, d := range Kubernetes {
		t.Run(d, func(t *testing.T) {
			if err := tf.InitValidate(filepath.Join(root, d)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestValidateFailsOnError shows that validate catches a broken module: a
// reference to a variable the namespace module does not declare, and an
// example passing an input the module does not have.
func TestValidateFailsOnError(t *testing.T) {
	tf := FromEnv(t)
	t.Run("undeclared variable", func(t *testing.T) {
		root := Copy(t)
		dir := filepath.Join(root, "modules/namespace")
		broken := "output \"broken\" {\n  value = var.not_declared\n}\n"
		if err := os.WriteFile(filepath.Join(dir, "broken.tf"), []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		err := tf.InitValidate(dir)
		if err == nil || !strings.Contains(err.Error(), "not_declared") {
			t.Fatalf("validate of a module using an undeclared variable: %v, want a failure naming it", err)
		}
	})
	t.Run("example passes an unknown input", func(t *testing.T) {
		root := Copy(t)
		dir := filepath.Join(root, "examples/local")
		main := filepath.Join(dir, "main.tf")
		data, err := os.ReadFile(main)
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(strings.Replace(string(data), "  name             = var.namespace\n", "  name             = var.namespace\n  no_such_input    = 1\n", 1))
		if err := os.WriteFile(main, data, 0o644); err != nil {
			t.Fatal(err)
		}
		err = tf.InitValidate(dir)
		if err == nil || !strings.Contains(err.Error(), "no_such_input") {
			t.Fatalf("validate of an example passing an unknown input: %v, want a failure naming it", err)
		}
	})
}
