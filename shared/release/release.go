// Package release makes what an operator installs, reproducibly (the same
// commit gives the same bytes): the function as Lambda zips (a `bootstrap`
// for the provided.al2023 runtime, arm64 and amd64) and one OCI image index
// of the jobs (linux/amd64 and linux/arm64), built from scratch without a
// container daemon nor a base image.
//
// Nothing the function or the jobs run imports this package: it is linked
// by the packaging command and by tests only.
package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Artifact names, in the output folder.
const (
	// FunctionZipPattern is the name of the function's zip, with the
	// architecture (arm64, amd64) in place of %s.
	FunctionZipPattern = "runboat-function-%s.zip"
	// JobsImageName is the name of the jobs' OCI image index, an OCI layout
	// in a tar.
	JobsImageName = "runboat-jobs.oci.tar"
)

// MaxBootstrapSize bounds the stripped arm64 bootstrap (decimal megabytes,
// as Lambda's console counts): a smaller zip uploads and cold-starts faster.
const MaxBootstrapSize = 35_000_000

// Architectures are those the artifacts are made for, Lambda's and the
// nodes'.
var Architectures = []string{"arm64", "amd64"}

// FunctionPackage is the function's command, in the functions module.
const FunctionPackage = "./cmd/runboat"

// JobCommands are the jobs' commands, in the jobs module; each becomes
// /NAME in the image.
var JobCommands = []string{"initializer", "stopper", "undeployer", "reconciler"}

// BuildOptions say what to compile.
type BuildOptions struct {
	// Module is the folder of the Go module that holds the packages.
	Module string
	// Packages are the packages to build, relative to Module ("./cmd/x").
	Packages []string
	// Arch is the target GOARCH; the target OS is linux.
	Arch string
	// Tags are build tags.
	Tags []string
	// Out is the folder the binaries go to, each named after its package.
	Out string
}

// Build compiles static, stripped, reproducible linux binaries: no cgo, no
// build id, no VCS stamp, no file system paths. The module builds alone (GOWORK=off), as
// its go.mod says.
func Build(ctx context.Context, opts BuildOptions) error {
	// No VCS stamp: the bytes depend on the sources only, be they a clone,
	// a worktree or an archive.
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", opts.Out + string(filepath.Separator)}
	if len(opts.Tags) > 0 {
		args = append(args, "-tags="+strings.Join(opts.Tags, ","))
	}
	args = append(args, opts.Packages...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = opts.Module
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+opts.Arch, "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("failed to build %s for linux/%s: %w\n%s", strings.Join(opts.Packages, " "), opts.Arch, err, stderr.String())
	}
	return nil
}

// BuildFunction compiles the function's bootstrap for arch, from the project
// at root, and returns it.
func BuildFunction(ctx context.Context, root, arch string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "runboat-function-")
	if err != nil {
		return nil, fmt.Errorf("failed to create a build folder: %w", err)
	}
	defer removeTemp(tmp)
	// lambda.norpc: provided.al2023 speaks the runtime API only, not the
	// go1.x runtime's RPC.
	opts := BuildOptions{Module: filepath.Join(root, "functions"), Packages: []string{FunctionPackage}, Arch: arch, Tags: []string{"lambda.norpc"}, Out: tmp}
	if err := Build(ctx, opts); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(tmp, filepath.Base(FunctionPackage)))
}

// BuildJobs compiles the jobs' commands for arch, from the project at root,
// and returns them by name.
func BuildJobs(ctx context.Context, root, arch string) (map[string][]byte, error) {
	tmp, err := os.MkdirTemp("", "runboat-jobs-")
	if err != nil {
		return nil, fmt.Errorf("failed to create a build folder: %w", err)
	}
	defer removeTemp(tmp)
	opts := BuildOptions{Module: filepath.Join(root, "jobs"), Arch: arch, Out: tmp}
	for _, c := range JobCommands {
		opts.Packages = append(opts.Packages, "./cmd/"+c)
	}
	if err := Build(ctx, opts); err != nil {
		return nil, err
	}
	bins := map[string][]byte{}
	for _, c := range JobCommands {
		b, err := os.ReadFile(filepath.Join(tmp, c))
		if err != nil {
			return nil, fmt.Errorf("failed to read the built %s: %w", c, err)
		}
		bins[c] = b
	}
	return bins, nil
}

// Result says what Package made.
type Result struct {
	// Files are the paths written, in order.
	Files []string
	// BootstrapSizes are the sizes of the bootstraps, by architecture.
	BootstrapSizes map[string]int
	// IndexDigest is the digest of the jobs' image index (sha256:...).
	IndexDigest string
}

// ErrTooLarge is returned when the arm64 bootstrap exceeds
// MaxBootstrapSize.
var ErrTooLarge = errors.New("the function's bootstrap is too large")

// CheckBootstrapSize fails with ErrTooLarge when a bootstrap of size bytes
// exceeds MaxBootstrapSize.
func CheckBootstrapSize(size int) error {
	if size > MaxBootstrapSize {
		return fmt.Errorf("%w: %d bytes, more than %d (see what weighs with go tool nm -size -sort size)", ErrTooLarge, size, MaxBootstrapSize)
	}
	return nil
}

// Package builds every artifact from the project at root into out: the
// function's zips with their .sha256 beside them, and the jobs' image.
func Package(ctx context.Context, root, out string) (*Result, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", out, err)
	}
	res := &Result{BootstrapSizes: map[string]int{}}
	write := func(name string, data []byte) error {
		path := filepath.Join(out, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("failed to write %s: %w", path, err)
		}
		res.Files = append(res.Files, path)
		return nil
	}
	jobs := map[string]map[string][]byte{}
	for _, arch := range Architectures {
		bootstrap, err := BuildFunction(ctx, root, arch)
		if err != nil {
			return nil, err
		}
		res.BootstrapSizes[arch] = len(bootstrap)
		if arch == "arm64" {
			if err := CheckBootstrapSize(len(bootstrap)); err != nil {
				return nil, err
			}
		}
		zip, err := FunctionZip(bootstrap)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf(FunctionZipPattern, arch)
		if err := write(name, zip); err != nil {
			return nil, err
		}
		if err := write(name+".sha256", SHA256Line(zip, name)); err != nil {
			return nil, err
		}
		if jobs[arch], err = BuildJobs(ctx, root, arch); err != nil {
			return nil, err
		}
	}
	idx, err := JobsIndex(jobs)
	if err != nil {
		return nil, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return nil, fmt.Errorf("failed to compute the image index digest: %w", err)
	}
	res.IndexDigest = digest.String()
	var buf bytes.Buffer
	if err := WriteOCITar(&buf, idx); err != nil {
		return nil, err
	}
	if err := write(JobsImageName, buf.Bytes()); err != nil {
		return nil, err
	}
	return res, nil
}

// SHA256Line is the line sha256sum prints for data named name (so that
// `sha256sum -c` checks it in the same folder).
func SHA256Line(data []byte, name string) []byte {
	sum := sha256.Sum256(data)
	return []byte(hex.EncodeToString(sum[:]) + "  " + name + "\n")
}

// readAll reads r and closes it.
func readAll(r io.ReadCloser) ([]byte, error) {
	defer func() { _ = r.Close() }() // read only
	return io.ReadAll(r)
}

// removeTemp removes a temporary folder; one left behind (the error) is
// only litter in the system's temporary folder.
func removeTemp(dir string) { _ = os.RemoveAll(dir) }
