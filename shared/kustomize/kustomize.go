// Package kustomize runs kustomize in memory: a folder is copied into
// krusty's in-memory filesystem, beside an overlay written as data, and the
// result comes back as unstructured objects. No kubectl, no disk writes, no
// network.
package kustomize

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// CopyFS copies the regular files and folders of fsys into mem under root.
// Symbolic links are followed (up to maxLinkDepth folders deep), and names
// that start with ".." are skipped: a folder mounted from a ConfigMap, as a
// kubefiles folder in a job's pod is, holds its files as links into a
// hidden "..<time>" folder, through "..data", which the kubelet swaps on
// each update.
func CopyFS(fsys fs.FS, mem filesys.FileSystem, root string) error {
	if err := copyFS(fsys, mem, root, 0); err != nil {
		return fmt.Errorf("failed to copy the folder into memory: %w", err)
	}
	return nil
}

// maxLinkDepth bounds the links to folders followed within one another (a
// link to a parent folder would never end).
const maxLinkDepth = 8

func copyFS(fsys fs.FS, mem filesys.FileSystem, root string, depth int) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), "..") && p != "." {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		target := path.Join(root, p)
		if d.IsDir() {
			return mem.MkdirAll(target)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			info, err := fs.Stat(fsys, p)
			if err != nil {
				return err
			}
			if info.IsDir() {
				if depth >= maxLinkDepth {
					return fmt.Errorf("%s: links to folders nested more than %d deep", p, maxLinkDepth)
				}
				sub, err := fs.Sub(fsys, p)
				if err != nil {
					return err
				}
				return copyFS(sub, mem, target, depth+1)
			}
			if !info.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return mem.WriteFile(target, b)
	})
}

// Build runs kustomize on the kustomization in dir of mem and returns the
// objects it makes, in kustomize's order.
func Build(mem filesys.FileSystem, dir string) ([]*unstructured.Unstructured, error) {
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, dir)
	if err != nil {
		return nil, fmt.Errorf("failed to run kustomize: %w", err)
	}
	objs := make([]*unstructured.Unstructured, 0, resMap.Size())
	for _, res := range resMap.Resources() {
		// Decode the kyaml node directly rather than through YAML text, then
		// through JSON for the types unstructured objects want (int64...).
		m, err := res.Map()
		if err != nil {
			return nil, fmt.Errorf("failed to decode %s: %w", res.CurId(), err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("failed to encode %s: %w", res.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("failed to decode %s: %w", res.CurId(), err)
		}
		objs = append(objs, u)
	}
	return objs, nil
}
