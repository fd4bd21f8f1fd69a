// Package terraform checks terraform/ offline: OpenTofu and the providers,
// built from the Go module proxy by toolchain.sh into the cache, run on a
// copy of the modules and examples (fmt, init from the filesystem mirror
// only, validate, and apply then destroy of examples/local on the local
// cluster).
//
// The tests run when RUNBOAT_TOFU and TF_CLI_CONFIG_FILE name the toolchain
// (`make terraform-check` sets them, after building it); a plain `go test
// ./...` skips them, saying so.
package terraform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tofu runs one OpenTofu binary with a CLI configuration that installs
// providers from the filesystem mirror only.
type Tofu struct {
	Bin       string
	CLIConfig string
}

// FromEnv returns the toolchain that RUNBOAT_TOFU and TF_CLI_CONFIG_FILE
// name, and skips the test when they are not set. Set but unusable fails
// the test.
func FromEnv(t testing.TB) *Tofu {
	t.Helper()
	bin, cfg := os.Getenv("RUNBOAT_TOFU"), os.Getenv("TF_CLI_CONFIG_FILE")
	if bin == "" || cfg == "" {
		t.Skip("RUNBOAT_TOFU and TF_CLI_CONFIG_FILE are not set: `make terraform-check` builds the toolchain and runs this test")
	}
	for _, p := range []string{bin, cfg} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("terraform toolchain: %v (run `make terraform-toolchain`)", err)
		}
	}
	return &Tofu{Bin: bin, CLIConfig: cfg}
}

// timeout bounds one tofu command (an apply waits for tokens and RBAC).
const timeout = 5 * time.Minute

// Run runs tofu with args in dir, without colours or prompts, and returns
// its standard output; a failure's error holds both outputs.
func (tf *Tofu) Run(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tf.Bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"TF_CLI_CONFIG_FILE="+tf.CLIConfig,
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"NO_COLOR=1",
		// No registry, no version check, no telemetry: offline.
		"CHECKPOINT_DISABLE=1",
		"TF_REGISTRY_DISCOVERY_RETRY=0",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("tofu %s in %s: %w\n%s%s", strings.Join(args, " "), dir, err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// Must runs tofu as Run does and fails the test if it fails.
func (tf *Tofu) Must(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := tf.Run(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// InitValidate initialises dir from the mirror (no backend) and validates
// it.
func (tf *Tofu) InitValidate(dir string) error {
	if _, err := tf.Run(dir, "init", "-backend=false", "-no-color", "-input=false"); err != nil {
		return err
	}
	_, err := tf.Run(dir, "validate", "-no-color")
	return err
}

// RepoRoot is the checkout: the folder above the working directory that
// holds terraform/ and go.work.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("failed to find the checkout: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "terraform")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("failed to find the checkout: no go.work beside terraform/ in %s or its parents", wd)
		}
		dir = parent
	}
}

// Copy copies terraform/ and manifests/ of the checkout (the namespace
// module reads the function's Role there) into a temporary folder and
// returns the copy of terraform/: init writes its lock file and .terraform
// there, never in the checkout.
func Copy(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	for _, d := range []string{"terraform", "manifests"} {
		if err := copyTree(filepath.Join(root, d), filepath.Join(dst, d)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dst, "terraform")
}

// copyTree copies the files of src into dst, leaving out what init and
// apply leave in a module folder of the checkout (.terraform, lock files,
// states).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == ".terraform" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if name == ".terraform.lock.hcl" || strings.HasPrefix(name, "terraform.tfstate") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
}

// errNotFound says that a folder the checks expect is missing.
var errNotFound = errors.New("not found")

// Dirs are the modules and examples of terraform/, by the providers they
// need: Kubernetes lists those that need the kubernetes provider only, AWS
// those that need the AWS provider.
var (
	Kubernetes = []string{"modules/namespace", "examples/local"}
	AWS        = []string{"modules/dns", "modules/database", "modules/function", "examples/aws"}
)

// checkListed fails when terraform/ has a module or example that neither
// list names, so that a new one is not left unchecked.
func checkListed(root string) error {
	listed := map[string]bool{}
	for _, d := range append(append([]string{}, Kubernetes...), AWS...) {
		listed[d] = true
	}
	var missing []string
	for _, parent := range []string{"modules", "examples"} {
		entries, err := os.ReadDir(filepath.Join(root, parent))
		if err != nil {
			return fmt.Errorf("%s: %w", parent, errNotFound)
		}
		for _, e := range entries {
			if e.IsDir() && !listed[parent+"/"+e.Name()] {
				missing = append(missing, parent+"/"+e.Name())
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not checked (add them to Kubernetes or AWS): %s", strings.Join(missing, ", "))
	}
	return nil
}
