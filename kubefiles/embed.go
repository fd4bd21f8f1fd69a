// Package kubefiles embeds the default kubefiles, so that every binary
// carries them: the Odoo build (the default, as in the Python runboat) and
// the demo build.
package kubefiles

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed odoo demo
var all embed.FS

// Default is the name of the kubefiles used when the configuration names
// none.
const Default = "odoo"

// Get returns the embedded kubefiles folder name ("odoo" or "demo").
func Get(name string) (fs.FS, error) {
	if name != "odoo" && name != "demo" {
		return nil, fmt.Errorf("no embedded kubefiles named %q (want odoo or demo)", name)
	}
	sub, err := fs.Sub(all, name)
	if err != nil {
		return nil, fmt.Errorf("failed to open the embedded kubefiles %q: %w", name, err)
	}
	return sub, nil
}
