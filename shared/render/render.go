// Package render renders a build's kubefiles: for one mode (deployment,
// initialize, cleanup, start, stop), it generates in memory a kustomize
// overlay over the mode's folder that sets everything runboat relies on (the
// namespace, the name prefix, the build labels, the Deployment's annotations,
// the image, the env and build variables), runs kustomize's krusty on an
// in-memory filesystem and returns the objects to apply.
//
// No value of a build is ever pasted into YAML text: the overlay and the
// objects it adds are data structures marshalled to JSON, so that a branch
// named `x"\n  evil: true` ends up as an inert string.
package render

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"

	"runboat.dev/shared/kustomize"
	"runboat.dev/shared/model"
)

// Names the kubefiles refer to. The objects are named before the build name
// prefix is added; kustomize updates the references to them.
const (
	// ImagePlaceholder is the image name the kubefiles use where the build
	// image goes (without tag or digest).
	ImagePlaceholder = "runboat-image"
	// VarsConfigMap is the ConfigMap of build variables (Var* keys and
	// template vars), the source of the kubefiles' replacements.
	VarsConfigMap = "runboat-vars"
	// EnvConfigMap is the ConfigMap of the build env (Vars.Env).
	EnvConfigMap = "runboat-env"
	// SecretEnvSecret is the Secret of the build secret env
	// (Vars.SecretEnv).
	SecretEnvSecret = "runboat-secret-env"
	// TemplateVarsFile is the optional file, at the top of a kubefiles
	// folder, that holds the default values of template vars: a YAML mapping
	// of names to string values.
	TemplateVarsFile = "template-vars.yaml"
)

// ErrModeNotFound is returned (wrapped) when a kubefiles folder has no
// folder with a kustomization file for the mode to render.
var ErrModeNotFound = errors.New("kubefiles mode not found")

// Where Render lays out its in-memory filesystem: the kubefiles folder is
// copied under kubefilesRoot and the overlay is written in overlayRoot, a
// sibling, so that the overlay refers to the mode folder as
// ../kubefiles/<mode>.
const (
	kubefilesRoot = "/kubefiles"
	overlayRoot   = "/runboat-overlay"
)

// HasMode reports whether the kubefiles folder fsys has the mode: a folder
// named after the mode holding a kustomization file. A mode folder without a
// kustomization file is an error.
func HasMode(fsys fs.FS, mode Mode) (bool, error) {
	if !mode.Valid() {
		return false, fmt.Errorf("unknown kubefiles mode %q", mode)
	}
	if jinja, err := isJinjaFolder(fsys); err != nil || jinja {
		// runboat's template renders every mode.
		return jinja, err
	}
	_, found, err := modeKustomizationFile(fsys, mode)
	return found, err
}

// modeKustomizationFile returns the path of the kustomization file of mode in
// fsys, and whether the mode folder exists.
func modeKustomizationFile(fsys fs.FS, mode Mode) (string, bool, error) {
	dir := string(mode)
	info, err := fs.Stat(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("failed to read kubefiles folder %q: %w", dir, err)
	}
	if !info.IsDir() {
		return "", false, fmt.Errorf("kubefiles mode %q is not a folder", dir)
	}
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		p := path.Join(dir, name)
		info, err := fs.Stat(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", false, fmt.Errorf("failed to read %q: %w", p, err)
		}
		if info.IsDir() {
			return "", false, fmt.Errorf("%q is a folder, want a kustomization file", p)
		}
		return p, true, nil
	}
	return "", false, fmt.Errorf("kubefiles folder %q has no kustomization file (one of %v)",
		dir, konfig.RecognizedKustomizationFileNames())
}

// Render renders the mode of the kubefiles folder fsys for the build
// described by vars.
//
// The objects are returned in the order to apply them: ServiceAccounts and
// RBAC, Secrets, ConfigMaps, PersistentVolumeClaims, Services, then any other
// kind (Ingresses, Jobs, ...), and the Deployment last; objects of the same
// kind are sorted by name. Every object is in vars.Namespace, named
// "<vars.Name>-..." and labelled runboat/build=<vars.Name>.
//
// A missing optional mode gives an error wrapping ErrModeNotFound; use
// HasMode first. To render a folder of the disk, pass os.DirFS(dir). Render
// keeps no state between calls and may be called concurrently.
func Render(fsys fs.FS, mode Mode, vars Vars) ([]*unstructured.Unstructured, error) {
	objs, err := render(fsys, mode, vars)
	if err != nil {
		return nil, fmt.Errorf("failed to render kubefiles mode %q: %w", mode, err)
	}
	return objs, nil
}

// SplitDeployment separates the build's Deployment from the other objects
// of a render of the deployment mode, which holds exactly one.
func SplitDeployment(objs []*unstructured.Unstructured) (dep *unstructured.Unstructured, rest []*unstructured.Unstructured, err error) {
	rest = make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind() {
			if dep != nil {
				return nil, nil, fmt.Errorf("kubefiles render two Deployments (%s, %s), want one", dep.GetName(), o.GetName())
			}
			dep = o
			continue
		}
		rest = append(rest, o)
	}
	if dep == nil {
		return nil, nil, errors.New("kubefiles render no Deployment, want one")
	}
	return dep, rest, nil
}

func render(fsys fs.FS, mode Mode, vars Vars) ([]*unstructured.Unstructured, error) {
	if !mode.Valid() {
		return nil, fmt.Errorf("unknown kubefiles mode %q", mode)
	}
	if err := vars.validate(mode); err != nil {
		return nil, fmt.Errorf("invalid build variables: %w", err)
	}
	jinja, err := isJinjaFolder(fsys)
	if err != nil {
		return nil, err
	}
	mem := filesys.MakeFsInMemory()
	if err := kustomize.CopyFS(fsys, mem, kubefilesRoot); err != nil {
		return nil, err
	}
	var base overlayBase
	if jinja {
		base, err = jinjaBase(fsys, mem, mode, vars)
	} else {
		base, err = modeBase(fsys, mode, vars)
	}
	if err != nil {
		return nil, err
	}
	if err := writeOverlay(mem, mode, vars, base); err != nil {
		return nil, err
	}
	objs, err := kustomize.Build(mem, overlayRoot)
	if err != nil {
		return nil, err
	}
	if err := checkObjects(objs, mode, vars); err != nil {
		return nil, fmt.Errorf("invalid rendered objects: %w", err)
	}
	sortObjects(objs)
	return objs, nil
}

// overlayBase is what the overlay is made over.
type overlayBase struct {
	// dir is the base's folder, relative to the overlay's.
	dir string
	// component tells whether the base is a Component rather than a
	// Kustomization.
	component bool
	// templateVars are the template vars of the build variables ConfigMap.
	templateVars map[string]string
	// ownNames tells that the base names its objects itself, with the build
	// name, and makes its own env (runboat's format): the overlay adds no name
	// prefix and none of its objects.
	ownNames bool
}

// modeBase returns the mode folder of the kubefiles folder fsys (this
// project's layout) as the base of the overlay.
func modeBase(fsys fs.FS, mode Mode, vars Vars) (overlayBase, error) {
	kustFile, found, err := modeKustomizationFile(fsys, mode)
	if err != nil {
		return overlayBase{}, err
	}
	if !found {
		return overlayBase{}, fmt.Errorf("%w: no folder %q in the kubefiles folder", ErrModeNotFound, string(mode))
	}
	isComponent, err := readIsComponent(fsys, kustFile)
	if err != nil {
		return overlayBase{}, err
	}
	templateVars, err := mergeTemplateVars(fsys, vars.TemplateVars)
	if err != nil {
		return overlayBase{}, err
	}
	return overlayBase{
		dir:          path.Join("..", path.Base(kubefilesRoot), string(mode)),
		component:    isComponent,
		templateVars: templateVars,
	}, nil
}

// readIsComponent reports whether the kustomization file is a kustomize
// Component (rather than a Kustomization, a base).
func readIsComponent(fsys fs.FS, kustFile string) (bool, error) {
	b, err := fs.ReadFile(fsys, kustFile)
	if err != nil {
		return false, fmt.Errorf("failed to read %q: %w", kustFile, err)
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(b, &head); err != nil {
		return false, fmt.Errorf("failed to parse %q: %w", kustFile, err)
	}
	switch head.Kind {
	case "", types.KustomizationKind:
		return false, nil
	case types.ComponentKind:
		return true, nil
	}
	return false, fmt.Errorf("%q: kind %q, want %s or %s", kustFile, head.Kind, types.KustomizationKind, types.ComponentKind)
}

// mergeTemplateVars returns the kubefiles' default template vars
// (TemplateVarsFile, if any) overridden by vars.
func mergeTemplateVars(fsys fs.FS, vars map[string]string) (map[string]string, error) {
	merged := map[string]string{}
	b, err := fs.ReadFile(fsys, TemplateVarsFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("failed to read %s: %w", TemplateVarsFile, err)
	default:
		// Decoded untyped, so that an unquoted 1.10 or yes is refused rather
		// than silently turned into "1.1" or "true".
		var raw map[string]any
		if err := yaml.UnmarshalStrict(b, &raw); err != nil {
			return nil, fmt.Errorf("failed to parse %s (want a mapping of names to strings): %w", TemplateVarsFile, err)
		}
		var errs []error
		for _, k := range slices.Sorted(maps.Keys(raw)) {
			s, ok := raw[k].(string)
			if !ok {
				errs = append(errs, fmt.Errorf("value of %q is not a string (quote it)", k))
				continue
			}
			merged[k] = s
		}
		errs = append(errs, validateMap("default template var", merged)...)
		if len(errs) > 0 {
			return nil, fmt.Errorf("invalid %s: %w", TemplateVarsFile, errors.Join(errs...))
		}
	}
	maps.Copy(merged, vars)
	var errs []error
	for _, k := range builtinVars {
		if _, ok := merged[k]; ok {
			errs = append(errs, fmt.Errorf("template var %q has the name of a build variable", k))
		}
	}
	return merged, errors.Join(errs...)
}

// writeOverlay writes the overlay kustomization over mode, and the objects it
// adds, into mem under overlayRoot.
func writeOverlay(mem filesys.FileSystem, mode Mode, vars Vars, base overlayBase) error {
	if err := mem.MkdirAll(overlayRoot); err != nil {
		return fmt.Errorf("failed to create the overlay folder: %w", err)
	}
	kust, err := overlayKustomization(mode, vars, base)
	if err != nil {
		return err
	}
	for _, g := range generatedObjects(vars, base) {
		b, err := marshalObject(g.obj)
		if err != nil {
			return fmt.Errorf("failed to marshal %s: %w", g.file, err)
		}
		if err := mem.WriteFile(path.Join(overlayRoot, g.file), b); err != nil {
			return fmt.Errorf("failed to write %s: %w", g.file, err)
		}
		kust.Resources = append(kust.Resources, g.file)
	}
	b, err := marshalJSON(kust)
	if err != nil {
		return fmt.Errorf("failed to marshal the overlay kustomization: %w", err)
	}
	if err := mem.WriteFile(path.Join(overlayRoot, konfig.DefaultKustomizationFileName()), b); err != nil {
		return fmt.Errorf("failed to write the overlay kustomization: %w", err)
	}
	return nil
}

// generatedFile is an object the overlay adds, in its file.
type generatedFile struct {
	file string
	obj  runtime.Object
}

// generatedObjects are the objects the overlay adds to the base: the build
// variables and env; none to a base that makes its own (runboat's format).
func generatedObjects(vars Vars, base overlayBase) []generatedFile {
	if base.ownNames {
		return nil
	}
	return []generatedFile{
		{"runboat-vars.json", varsConfigMap(vars, base.templateVars)},
		{"runboat-env.json", &corev1.ConfigMap{
			TypeMeta:   typeMeta("ConfigMap"),
			ObjectMeta: objectMeta(EnvConfigMap),
			Data:       vars.Env,
		}},
		{"runboat-secret-env.json", secretEnv(vars.SecretEnv)},
	}
}

// overlayKustomization is the overlay over the mode folder, without the
// generated objects (writeOverlay adds them to its resources).
func overlayKustomization(mode Mode, vars Vars, base overlayBase) (*types.Kustomization, error) {
	img, err := parseImage(vars.Image)
	if err != nil {
		return nil, fmt.Errorf("invalid image: %w", err)
	}
	k := &types.Kustomization{
		TypeMeta: types.TypeMeta{
			APIVersion: types.KustomizationVersion,
			Kind:       types.KustomizationKind,
		},
		Namespace:  vars.Namespace,
		NamePrefix: vars.Name + "-",
		Labels: []types.Label{
			// Selectors and templates included, as runboat's commonLabels.
			{Pairs: map[string]string{model.LabelBuild: vars.Name}, IncludeSelectors: true},
			// Not in selectors, which are immutable.
			{
				Pairs: map[string]string{
					model.LabelCommit: model.CommitLabel(vars.Commit),
					model.LabelTarget: vars.Target,
					model.LabelRepo:   model.RepoKey(vars.Repo),
				},
				IncludeTemplates: true,
			},
		},
		Images: []types.Image{{
			Name:    ImagePlaceholder,
			NewName: img.Name,
			NewTag:  img.Tag,
			Digest:  img.Digest,
		}},
	}
	if base.component {
		// A component is applied to the overlay's objects, so its
		// replacements see the build variables ConfigMap.
		k.Components = []string{base.dir}
	} else {
		k.Resources = []string{base.dir}
	}
	if base.ownNames {
		k.NamePrefix = ""
	}
	if mode == ModeDeployment {
		p, err := deploymentPatch(vars)
		if err != nil {
			return nil, err
		}
		k.Patches = append(k.Patches, p)
	}
	if kind := mode.jobKind(); kind != "" {
		p, err := jobKindPatch(kind)
		if err != nil {
			return nil, err
		}
		k.Patches = append(k.Patches, p)
	}
	return k, nil
}

// deploymentPatch is the strategic merge patch that makes the build's
// Deployment the runboat build: no replicas, the cleanup finalizer and the
// build annotations.
func deploymentPatch(vars Vars) (types.Patch, error) {
	patch := map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata": map[string]any{
			// The name is ignored: the target selects the Deployments.
			"name": "runboat-deployment",
			"annotations": map[string]string{
				model.AnnotationRepo:         vars.Repo,
				model.AnnotationTargetBranch: vars.TargetBranch,
				model.AnnotationPR:           vars.PR,
				model.AnnotationCommit:       vars.Commit,
				model.AnnotationInitStatus:   string(vars.InitStatus),
				model.AnnotationLastScaled:   model.FormatTime(vars.LastScaled),
			},
			"labels":     map[string]string{model.LabelInitStatus: string(vars.InitStatus)},
			"finalizers": []string{model.Finalizer},
		},
		"spec": map[string]any{"replicas": 0},
	}
	return kindPatch("apps", "Deployment", patch)
}

// jobKindPatch labels the Jobs and their pod templates with their kind.
func jobKindPatch(kind model.JobKind) (types.Patch, error) {
	labels := map[string]string{model.LabelJobKind: string(kind)}
	patch := map[string]any{
		"apiVersion": "batch/v1",
		"kind":       "Job",
		"metadata": map[string]any{
			"name":   "runboat-job",
			"labels": labels,
		},
		"spec": map[string]any{
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
			},
		},
	}
	return kindPatch("batch", "Job", patch)
}

// kindPatch is the strategic merge patch of every object of a group and
// kind.
func kindPatch(group, kind string, patch map[string]any) (types.Patch, error) {
	b, err := marshalJSON(patch)
	if err != nil {
		return types.Patch{}, fmt.Errorf("failed to marshal the %s patch: %w", kind, err)
	}
	return types.Patch{
		Patch:  string(b),
		Target: &types.Selector{ResId: resid.ResId{Gvk: resid.Gvk{Group: group, Kind: kind}}},
	}, nil
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: "v1", Kind: kind}
}

func objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name}
}

// varsConfigMap is the ConfigMap of build variables.
func varsConfigMap(vars Vars, templateVars map[string]string) *corev1.ConfigMap {
	data := map[string]string{
		VarName:         vars.Name,
		VarSlug:         vars.Slug,
		VarDomain:       vars.Domain,
		VarHost:         vars.Host(),
		VarRepo:         vars.Repo,
		VarTargetBranch: vars.TargetBranch,
		VarPR:           vars.PR,
		VarCommit:       vars.Commit,
	}
	maps.Copy(data, templateVars) // no collision: checked by mergeTemplateVars
	return &corev1.ConfigMap{
		TypeMeta:   typeMeta("ConfigMap"),
		ObjectMeta: objectMeta(VarsConfigMap),
		Data:       data,
	}
}

// secretEnv is the Secret of the build secret env.
func secretEnv(env map[string]string) *corev1.Secret {
	s := &corev1.Secret{
		TypeMeta:   typeMeta("Secret"),
		ObjectMeta: objectMeta(SecretEnvSecret),
		Type:       corev1.SecretTypeOpaque,
	}
	if len(env) > 0 {
		s.Data = make(map[string][]byte, len(env))
		for _, k := range slices.Sorted(maps.Keys(env)) {
			s.Data[k] = []byte(env[k])
		}
	}
	return s
}

// marshalObject marshals a typed object to JSON, without the null
// creationTimestamp of an object never stored.
func marshalObject(obj runtime.Object) ([]byte, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("failed to convert %T: %w", obj, err)
	}
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	b, err := marshalJSON(m)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal %T: %w", obj, err)
	}
	return b, nil
}
