package release

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The jobs' image.
const (
	// CAPath is where the image holds the CA certificates (Go's crypto/x509
	// looks there first on linux), for GitHub's API.
	CAPath = "/etc/ssl/certs/ca-certificates.crt"
	// User is the user and group the jobs run as: not root, and the
	// "nonroot" of distroless images.
	User = "65532:65532"
)

// epoch is the time of every file and of the image's config: the image
// depends on its content only.
var epoch = time.Unix(0, 0).UTC()

// CABundle returns the root certificates of Mozilla's NSS trust store, as
// packaged by golang.org/x/crypto/x509roots/fallback, in PEM: the same bytes
// on every machine for one version of the module. Roots with a constraint a
// PEM file cannot carry (distrust after a date) are left out.
func CABundle() []byte {
	var buf bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		// A bytes.Buffer does not fail.
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	return buf.Bytes()
}

// file is one entry of a layer.
type file struct {
	name string // without the leading slash
	mode int64
	data []byte // nil for a directory
}

// jobsLayer returns the one layer of the jobs' image: the binaries at the
// root, the CA certificates, nothing else (no shell, no libc).
func jobsLayer(bins map[string][]byte, ca []byte) (v1.Layer, error) {
	files := []file{}
	for dir := path.Dir(strings.TrimPrefix(CAPath, "/")); dir != "."; dir = path.Dir(dir) {
		files = append(files, file{name: dir + "/", mode: 0o755})
	}
	files = append(files, file{name: strings.TrimPrefix(CAPath, "/"), mode: 0o644, data: ca})
	for name, b := range bins {
		files = append(files, file{name: name, mode: 0o755, data: b})
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: epoch, Format: tar.FormatPAX}
		if f.data == nil {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("failed to write the layer: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("failed to write the layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("failed to write the layer: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// JobsImage returns the jobs' image for linux/arch: bins (name → binary) at
// the root of the file system, the CA certificates at CAPath, the user
// User, no entrypoint (each CronJob names its command), no history times.
func JobsImage(arch string, bins map[string][]byte) (v1.Image, error) {
	layer, err := jobsLayer(bins, CABundle())
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       User,
			WorkingDir: "/",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to set the image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "make package", Comment: "the jobs of runboat and CA certificates"},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to add the layer: %w", err)
	}
	return img, nil
}

// JobsIndex returns the jobs' image index: one image per architecture of
// bins (arch → name → binary), in the order of Architectures.
func JobsIndex(bins map[string]map[string][]byte) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range Architectures {
		b, ok := bins[arch]
		if !ok {
			continue
		}
		img, err := JobsImage(arch, b)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx, nil
}

// WriteOCITar writes idx as an OCI image layout in a tar (what `skopeo copy
// oci-archive:` reads, and `crane push` once extracted): index.json names
// the one index, blobs/sha256/ holds it, its images and their layers. Files
// are in lexical order, with fixed times and owners.
func WriteOCITar(w io.Writer, idx v1.ImageIndex) error {
	tmp, err := os.MkdirTemp("", "runboat-oci-")
	if err != nil {
		return fmt.Errorf("failed to create a layout folder: %w", err)
	}
	defer removeTemp(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("failed to write the OCI layout: %w", err)
	}
	if err := p.AppendIndex(idx); err != nil {
		return fmt.Errorf("failed to write the OCI layout: %w", err)
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == tmp {
			return err
		}
		rel, err := filepath.Rel(tmp, p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: epoch, Format: tar.FormatPAX}
		var data []byte
		if d.IsDir() {
			h.Typeflag, h.Mode, h.Name = tar.TypeDir, 0o755, h.Name+"/"
		} else {
			if data, err = os.ReadFile(p); err != nil {
				return err
			}
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to write the OCI tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("failed to write the OCI tar: %w", err)
	}
	return nil
}

// ReadOCITar opens an OCI layout tar written by WriteOCITar and returns its
// image index (the one index.json names). The layout is extracted to a
// temporary folder; call the returned cleanup when done with the index.
func ReadOCITar(ociTar string) (v1.ImageIndex, func(), error) {
	f, err := os.Open(ociTar)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to open the OCI tar: %w", err)
	}
	defer func() { _ = f.Close() }() // read only
	tmp, err := os.MkdirTemp("", "runboat-oci-")
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create a layout folder: %w", err)
	}
	cleanup := func() { removeTemp(tmp) }
	fail := func(err error) (v1.ImageIndex, func(), error) {
		cleanup()
		return nil, nil, fmt.Errorf("failed to read the OCI tar %s: %w", ociTar, err)
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if !filepath.IsLocal(h.Name) {
			return fail(fmt.Errorf("unsafe path %q", h.Name))
		}
		target := filepath.Join(tmp, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = writeFrom(target, tr)
		default:
			err = fmt.Errorf("unexpected entry %q of type %c", h.Name, h.Typeflag)
		}
		if err != nil {
			return fail(err)
		}
	}
	outer, err := layout.ImageIndexFromPath(tmp)
	if err != nil {
		return fail(err)
	}
	m, err := outer.IndexManifest()
	if err != nil {
		return fail(err)
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return fail(errors.New("index.json does not name exactly one image index"))
	}
	idx, err := outer.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return fail(err)
	}
	return idx, cleanup, nil
}

func writeFrom(target string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	out, err := os.Create(target)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		_ = out.Close() // the copy failed already
		return err
	}
	return out.Close()
}

// PlatformImage returns the image of idx for platform ("linux/amd64").
func PlatformImage(idx v1.ImageIndex, platform string) (v1.Image, error) {
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the platform %q: %w", platform, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("failed to read the image index: %w", err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.Satisfies(*want) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("failed to read the image of %s: %w", platform, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("the image index has no image for %s", platform)
}

// ExtractFile returns the file at name (such as "/initializer") in the
// image for platform ("linux/amd64") of the OCI layout tar ociTar (such as
// dist/runboat-jobs.oci.tar), and its permission bits: the jobs'
// binaries, exactly as the image holds them, to run them.
func ExtractFile(ociTar, platform, name string) ([]byte, fs.FileMode, error) {
	idx, cleanup, err := ReadOCITar(ociTar)
	if err != nil {
		return nil, 0, err
	}
	defer cleanup()
	img, err := PlatformImage(idx, platform)
	if err != nil {
		return nil, 0, err
	}
	return ImageFile(img, name)
}

// ImageFile returns the file at name in the file system of img, and its
// permission bits.
func ImageFile(img v1.Image, name string) ([]byte, fs.FileMode, error) {
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }() // read only
	want := strings.TrimPrefix(path.Clean("/"+name), "/")
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("no %s in the image", name)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("failed to read the image's files: %w", err)
		}
		if strings.TrimPrefix(path.Clean("/"+h.Name), "/") != want || h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, 0, fmt.Errorf("failed to read %s in the image: %w", name, err)
		}
		return b, fs.FileMode(h.Mode).Perm(), nil
	}
}
