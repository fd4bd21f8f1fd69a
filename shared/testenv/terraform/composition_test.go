package terraform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestComposition checks the references within every module and example,
// and between the examples and the modules they call, with no provider
// (so the AWS ones too, which validate cannot check here).
func TestComposition(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append(append([]string{}, Kubernetes...), AWS...) {
		t.Run(d, func(t *testing.T) {
			if err := checkComposition(filepath.Join(root, "terraform", d)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCompositionFailsWhenBroken shows each kind of break being caught.
func TestCompositionFailsWhenBroken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mod/main.tf", `variable "required" {
  type = string
}

variable "optional" {
  type    = string
  default = "x"
}

output "out" {
  value = var.required
}
`)
	write("example/main.tf", `locals {
  known = 1
}

module "m" {
  source = "../mod"

  optional = var.undeclared
  unknown  = local.unknown
}

output "o" {
  value = module.m.missing
}

output "p" {
  value = module.other.out
}
`)
	err := checkComposition(filepath.Join(dir, "example"))
	if err == nil {
		t.Fatal("a broken composition passed")
	}
	for _, want := range []string{
		"var.undeclared is not declared",
		"local.unknown is not defined",
		`has no input "unknown"`,
		`the required input "required"`,
		"module.m.missing: ../mod has no such output",
		"module.other is not called",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}
