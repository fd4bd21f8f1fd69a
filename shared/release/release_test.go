package release_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"runboat.dev/shared/release"
)

// fakeJobs are binaries standing for the jobs' of each architecture.
func fakeJobs() map[string]map[string][]byte {
	bins := map[string]map[string][]byte{}
	for _, arch := range release.Architectures {
		bins[arch] = map[string][]byte{}
		for _, c := range release.JobCommands {
			bins[arch][c] = []byte("#binary " + c + " for " + arch)
		}
	}
	return bins
}

// writeJobsTar writes the jobs' index of bins into a tar and returns its
// bytes and the index digest.
func writeJobsTar(t *testing.T, bins map[string]map[string][]byte) ([]byte, string) {
	t.Helper()
	idx, err := release.JobsIndex(bins)
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := release.WriteOCITar(&buf, idx); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), d.String()
}

func TestSameInputsSameBytes(t *testing.T) {
	a, da := writeJobsTar(t, fakeJobs())
	b, db := writeJobsTar(t, fakeJobs())
	if !bytes.Equal(a, b) || da != db {
		t.Errorf("two writes of the same jobs differ: %s and %s", da, db)
	}
	za, err := release.FunctionZip([]byte("bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	zb, err := release.FunctionZip([]byte("bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(za, zb) {
		t.Error("two zips of the same bootstrap differ")
	}
	other := fakeJobs()
	other["amd64"]["stopper"] = []byte("another stopper")
	if _, dc := writeJobsTar(t, other); dc == da {
		t.Error("the index digest does not change with a binary")
	}
}

func TestFunctionZip(t *testing.T) {
	z, err := release.FunctionZip([]byte("the bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	b, mode, err := release.ZipBootstrap(z)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "the bootstrap" || mode != 0o755 {
		t.Errorf("bootstrap %q mode %o, want the bootstrap 755", b, mode)
	}
	line := string(release.SHA256Line([]byte("abc"), "x.zip"))
	if want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  x.zip\n"; line != want {
		t.Errorf("sha256 line %q, want %q", line, want)
	}
}

func TestJobsImage(t *testing.T) {
	data, digest := writeJobsTar(t, fakeJobs())
	path := filepath.Join(t.TempDir(), release.JobsImageName)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	idx, cleanup, err := release.ReadOCITar(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if err := validate.Index(idx); err != nil {
		t.Errorf("the index read back is not valid: %v", err)
	}
	if d, err := idx.Digest(); err != nil || d.String() != digest {
		t.Errorf("index digest read back %v (%v), want %s", d, err, digest)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != len(release.Architectures) {
		t.Fatalf("%d manifests, want %d", len(m.Manifests), len(release.Architectures))
	}
	for _, arch := range release.Architectures {
		platform := "linux/" + arch
		img, err := release.PlatformImage(idx, platform)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OS != "linux" || cfg.Architecture != arch || cfg.Config.User != "65532:65532" || len(cfg.Config.Entrypoint) != 0 || len(cfg.Config.Cmd) != 0 {
			t.Errorf("%s: config %s/%s user %q entrypoint %q cmd %q", platform, cfg.OS, cfg.Architecture, cfg.Config.User, cfg.Config.Entrypoint, cfg.Config.Cmd)
		}
		if cfg.Created.Unix() != 0 {
			t.Errorf("%s: created %v, want the epoch", platform, cfg.Created)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: %d layers (%v), want 1", platform, len(layers), err)
		}
		for _, c := range release.JobCommands {
			b, mode, err := release.ImageFile(img, "/"+c)
			if err != nil {
				t.Fatal(err)
			}
			if want := "#binary " + c + " for " + arch; string(b) != want || mode != 0o755 {
				t.Errorf("%s: /%s is %q mode %o, want %q mode 755", platform, c, b, mode, want)
			}
		}
		ca, mode, err := release.ImageFile(img, release.CAPath)
		if err != nil {
			t.Fatal(err)
		}
		if mode != 0o644 {
			t.Errorf("%s: CA mode %o, want 644", platform, mode)
		}
		checkCAs(t, ca)
		for _, absent := range []string{"/bin/sh", "/busybox"} {
			if _, _, err := release.ImageFile(img, absent); err == nil {
				t.Errorf("%s: the image holds %s", platform, absent)
			}
		}
	}
	b, mode, err := release.ExtractFile(path, "linux/arm64", "/undeployer")
	if err != nil || string(b) != "#binary undeployer for arm64" || mode != fs.FileMode(0o755) {
		t.Errorf("ExtractFile: %q mode %o (%v)", b, mode, err)
	}
	if _, _, err := release.ExtractFile(path, "linux/s390x", "/undeployer"); err == nil {
		t.Error("ExtractFile of a platform the index lacks did not fail")
	}
}

// checkCAs checks that ca is a PEM bundle that GitHub's API's chain is
// verified with: many certificates, all parsed.
func checkCAs(t *testing.T, ca []byte) {
	t.Helper()
	n := 0
	for rest := ca; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatalf("certificate %d: %v", n, err)
		}
	}
	pool := x509.NewCertPool()
	if n < 100 || !pool.AppendCertsFromPEM(ca) {
		t.Errorf("the CA bundle holds %d certificates", n)
	}
}

func TestCheckBootstrapSize(t *testing.T) {
	if err := release.CheckBootstrapSize(release.MaxBootstrapSize); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if err := release.CheckBootstrapSize(release.MaxBootstrapSize + 1); !errors.Is(err, release.ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
}
