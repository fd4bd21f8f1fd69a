package localcluster

import (
	"archive/tar"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"runboat.dev/shared/release"
)

// The images the local cluster makes for its real node: nothing is pulled
// (there is no registry), so these are built from the programs beside this
// file and imported into the node's containerd. Their names have a domain
// of their own, so that no registry is ever asked for them, and a tag that
// is not "latest", so that the kubelet's default pull policy is
// IfNotPresent.
const (
	// PauseImage is the sandbox image of every pod of the real node.
	PauseImage = "localhost/runboat/pause:local"
	// DemoImage is the image of the demo kubefiles' build: /runboat-demo
	// (see demo/main.go).
	DemoImage = "localhost/runboat/demo:local"
)

var (
	//go:embed pause/main.go
	pauseMain []byte
	//go:embed demo/main.go
	demoMain []byte
)

// imageSource is one program of an image: its main package's source and
// the path of its binary in the image.
type imageSource struct {
	name, binary string
	main         []byte
	// cmd is the image's default command; nil for none.
	cmd []string
}

var nodeImages = []imageSource{
	{name: PauseImage, binary: "/pause", main: pauseMain, cmd: []string{"/pause"}},
	{name: DemoImage, binary: "/runboat-demo", main: demoMain},
}

// buildImages builds the programs of nodeImages, in a module of their own
// under dir (they use the standard library only: nothing is downloaded),
// and writes each image as an OCI layout tar there; it returns the tars by
// image name.
func buildImages(ctx context.Context, dir string) (map[string]string, error) {
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module runboat.dev/localcluster/images\n\ngo 1.26.0\n"), 0o644); err != nil {
		return nil, fmt.Errorf("failed to write the images' go.mod: %w", err)
	}
	tars := map[string]string{}
	for i, src := range nodeImages {
		pkg := filepath.Join(dir, fmt.Sprintf("img%d", i))
		if err := os.MkdirAll(pkg, 0o755); err != nil {
			return nil, fmt.Errorf("failed to create a build folder: %w", err)
		}
		if err := os.WriteFile(filepath.Join(pkg, "main.go"), src.main, 0o644); err != nil {
			return nil, fmt.Errorf("failed to write the source of %s: %w", src.name, err)
		}
		bin := filepath.Join(pkg, "bin")
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
		cmd.Dir = pkg
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("failed to build the program of %s: %w\n%s", src.name, err, out)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("failed to read the program of %s: %w", src.name, err)
		}
		img, err := singleFileImage(src.binary, data, src.cmd)
		if err != nil {
			return nil, fmt.Errorf("failed to make the image %s: %w", src.name, err)
		}
		tarPath := filepath.Join(dir, fmt.Sprintf("img%d.oci.tar", i))
		if err := writeImageTar(tarPath, img); err != nil {
			return nil, fmt.Errorf("failed to write the image %s: %w", src.name, err)
		}
		tars[src.name] = tarPath
	}
	return tars, nil
}

// singleFileImage is an image of this machine's platform whose one layer
// holds one executable at path, run as the user 65534 unless a pod says
// otherwise.
func singleFileImage(path string, data []byte, cmd []string) (v1.Image, error) {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	h := &tar.Header{Name: path[1:], Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(h); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer.Bytes())), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Cmd = cmd
	cfg.Config.User = "65534:65534"
	return mutate.ConfigFile(img, cfg)
}

// writeImageTar writes img as a one-platform image index in an OCI layout
// tar, as `make package` writes the jobs' image.
func writeImageTar(path string, img v1.Image) error {
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}},
	})
	return WriteImageIndexTar(path, idx)
}

// WriteImageIndexTar writes idx in an OCI layout tar at path.
func WriteImageIndexTar(path string, idx v1.ImageIndex) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", path, err)
	}
	if err := release.WriteOCITar(f, idx); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// ImportImage imports the image of an OCI layout tar (as `make package`
// writes the jobs' image, or WriteImageIndexTar) into the real node's
// containerd, under name, for this machine's platform. The node must be
// running.
func (c *Cluster) ImportImage(ctx context.Context, ociTar, name string) error {
	return importImage(ctx, c.node().socket(), ociTar, name)
}

func importImage(ctx context.Context, socket, ociTar, name string) error {
	cmd := exec.CommandContext(ctx, "ctr", "--address", socket, "--namespace", "k8s.io",
		"images", "import", "--index-name", name, "--platform", "linux/"+runtime.GOARCH, ociTar)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to import the image %s into the real node: %w\n%s", name, err, out)
	}
	return nil
}

// ContainerMounts returns where a container of the real node has mounts,
// as containerd gave them to runc: the container is named by its pod's
// status (containerStatuses[].containerID, "containerd://<id>").
func (c *Cluster) ContainerMounts(ctx context.Context, containerID string) ([]string, error) {
	id, ok := strings.CutPrefix(containerID, "containerd://")
	if !ok {
		return nil, fmt.Errorf("container %q is not one of containerd", containerID)
	}
	out, err := exec.CommandContext(ctx, "ctr", "--address", c.node().socket(), "--namespace", "k8s.io", "containers", "info", id).Output()
	if err != nil {
		return nil, fmt.Errorf("failed to read the container %s from the real node: %w", id, err)
	}
	var info struct {
		Spec struct {
			Mounts []struct {
				Destination string `json:"destination"`
			} `json:"mounts"`
		}
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("failed to read the container %s from the real node: %w", id, err)
	}
	var paths []string
	for _, m := range info.Spec.Mounts {
		paths = append(paths, m.Destination)
	}
	return paths, nil
}
