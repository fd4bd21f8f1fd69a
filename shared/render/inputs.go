package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"runboat.dev/kubefiles"
	"runboat.dev/shared/config"
	"runboat.dev/shared/model"
)

// ErrUnsupported is returned for a build whose repository and branch no rule
// of the configuration supports.
var ErrUnsupported = errors.New("repository and branch not supported")

// Kubefiles returns the kubefiles folder of a build rule: its own
// kubefiles_path, else the configuration's default, else the embedded
// default kubefiles.
func Kubefiles(cfg config.Builds, bs config.BuildSettings) (fs.FS, error) {
	path := cfg.KubefilesPath(bs)
	if path == "" {
		return kubefiles.Get(kubefiles.Default)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open the kubefiles folder: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("kubefiles path %q is not a folder", path)
	}
	return os.DirFS(path), nil
}

// VarsFor returns the render variables of the build ref under a rule of the
// configuration: its identity, the namespace and domain, and the rule's
// effective image, env, secret env and template vars.
func VarsFor(cfg config.Builds, bs config.BuildSettings, ref model.Ref) Vars {
	eff := cfg.Effective(bs)
	v := NewVars(ref)
	v.Namespace = cfg.Namespace
	v.Domain = cfg.Domain
	v.Image = eff.Image
	v.Env = eff.Env
	v.SecretEnv = eff.SecretEnv.Values()
	v.TemplateVars = eff.TemplateVars
	return v
}
