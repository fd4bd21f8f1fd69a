// Package manifests renders the kustomize base of the project's manifests/
// folder (what installs the jobs in a namespace: ServiceAccount, Role,
// RoleBinding, configuration and CronJobs) and its function/ folder (the
// webhook function's ServiceAccount, Role, RoleBinding and token Secret),
// and installs them in a test namespace of the local cluster, so that
// end-to-end tests can act as the jobs' ServiceAccount and as the
// function's.
package manifests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/pkg/util"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"runboat.dev/shared/kustomize"
)

// Names of the objects of the base.
const (
	ServiceAccount = "runboat"
	Role           = "runboat"
	RoleBinding    = "runboat"
	ConfigMap      = "runboat-config"
	// Secret is the Secret the CronJobs read and the installer creates; the
	// base refers to it and does not hold it.
	Secret = "runboat-secrets"

	CronJobInitializer = "runboat-initializer"
	CronJobStopper     = "runboat-stopper"
	CronJobUndeployer  = "runboat-undeployer"
	CronJobReconciler  = "runboat-reconciler"

	// ReconcilerServiceAccount, ReconcilerRole and ReconcilerRoleBinding
	// are the reconciler's identity: it creates builds, as the function
	// does, which the other jobs may not.
	ReconcilerServiceAccount = "runboat-reconciler"
	ReconcilerRole           = "runboat-reconciler"
	ReconcilerRoleBinding    = "runboat-reconciler"

	// Image is the placeholder image name of the CronJobs, which installers
	// replace with kustomize's images.
	Image = "runboat-jobs"
)

// CronJobs are the names of the CronJobs.
var CronJobs = []string{CronJobInitializer, CronJobStopper, CronJobUndeployer, CronJobReconciler}

// folderName is the name of the manifests folder at the top of the project.
const folderName = "manifests"

// Dir finds the manifests folder of the project: the folder "manifests"
// holding a kustomization.yaml in the working directory or the nearest of
// its parents (tests run in their package's folder, somewhere below the top
// of the project).
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("failed to find the manifests folder: %w", err)
	}
	for dir := wd; ; {
		candidate := filepath.Join(dir, folderName)
		if _, err := os.Stat(filepath.Join(candidate, "kustomization.yaml")); err == nil {
			return candidate, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("failed to find the manifests folder: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("failed to find the manifests folder: no %s/kustomization.yaml in %s or its parents", folderName, wd)
		}
		dir = parent
	}
}

// Options change what Render renders, as an installer's overlay would.
type Options struct {
	// Namespace, when set, is the namespace of every object (and of the
	// RoleBinding's subject), as `kustomize edit set namespace` sets it.
	Namespace string
	// Image, when set, replaces the placeholder image (name[:tag] or
	// name@digest), as `kustomize edit set image runboat-jobs=...` does.
	Image string
}

// Where Render lays out its in-memory filesystem: the manifests folder is
// copied to baseRoot, and the overlay of the options is written beside it.
const (
	baseRoot    = "/base"
	overlayRoot = "/overlay"
)

// Render renders the kustomize base in dir (see Dir) with kustomize's
// krusty, through an overlay that applies opts, and returns the objects in
// the order kustomize gives them. Only dir is read: it is copied into an
// in-memory filesystem first.
func Render(dir string, opts Options) ([]*unstructured.Unstructured, error) {
	mem := filesys.MakeFsInMemory()
	if err := kustomize.CopyFS(os.DirFS(dir), mem, baseRoot); err != nil {
		return nil, err
	}
	overlay, err := overlayKustomization(opts)
	if err != nil {
		return nil, err
	}
	if err := mem.MkdirAll(overlayRoot); err != nil {
		return nil, fmt.Errorf("failed to create the overlay folder: %w", err)
	}
	if err := mem.WriteFile(path.Join(overlayRoot, "kustomization.yaml"), overlay); err != nil {
		return nil, fmt.Errorf("failed to write the overlay: %w", err)
	}
	objs, err := kustomize.Build(mem, overlayRoot)
	if err != nil {
		return nil, fmt.Errorf("failed to render %s: %w", dir, err)
	}
	return objs, nil
}

// overlayKustomization returns the overlay of opts over the base, as YAML
// marshalled from data.
func overlayKustomization(opts Options) ([]byte, error) {
	k := types.Kustomization{
		TypeMeta: types.TypeMeta{
			APIVersion: types.KustomizationVersion,
			Kind:       types.KustomizationKind,
		},
		Resources: []string{path.Join("..", path.Base(baseRoot))},
		Namespace: opts.Namespace,
	}
	if opts.Image != "" {
		img, err := parseImage(opts.Image)
		if err != nil {
			return nil, err
		}
		k.Images = []types.Image{img}
	}
	b, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal the overlay: %w", err)
	}
	return b, nil
}

// parseImage turns name[:tag] or name@digest into the replacement of the
// placeholder image.
func parseImage(ref string) (types.Image, error) {
	name, tag, digest := util.SplitImageName(ref)
	if name == "" || strings.ContainsAny(ref, " \t\n") {
		return types.Image{}, fmt.Errorf("invalid image %q", ref)
	}
	return types.Image{Name: Image, NewName: name, NewTag: tag, Digest: digest}, nil
}

// CronJobEnv is the value of the environment variable name of the
// container of the CronJob cronJob of the base, as installed: what its
// job's process gets (a benchmark runs the job so).
func CronJobEnv(cronJob, name string) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	objs, err := Render(dir, Options{})
	if err != nil {
		return "", err
	}
	for _, o := range objs {
		if o.GetKind() != "CronJob" || o.GetName() != cronJob {
			continue
		}
		containers, _, err := unstructured.NestedSlice(o.Object, "spec", "jobTemplate", "spec", "template", "spec", "containers")
		if err != nil {
			return "", fmt.Errorf("CronJob %s: its containers: %w", cronJob, err)
		}
		if len(containers) != 1 {
			return "", fmt.Errorf("CronJob %s: %d containers, want one", cronJob, len(containers))
		}
		c, _ := containers[0].(map[string]any)
		env, _, _ := unstructured.NestedSlice(c, "env")
		for _, e := range env {
			m, _ := e.(map[string]any)
			if m["name"] == name {
				v, ok := m["value"].(string)
				if !ok {
					return "", fmt.Errorf("CronJob %s: %s has no plain value", cronJob, name)
				}
				return v, nil
			}
		}
		return "", fmt.Errorf("CronJob %s: no %s in its environment", cronJob, name)
	}
	return "", fmt.Errorf("no CronJob %s in the base", cronJob)
}
