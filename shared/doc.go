// Package shared is the library of the serverless runboat: configuration,
// the build model, kubefiles rendering, Kubernetes and GitHub access, and the
// local control plane used by development and tests. Its subpackages hold the
// code; this package only carries the module's go.mod, whose version of
// k8s.io/client-go pins the Kubernetes version of the local control plane.
package shared

import _ "embed"

// GoMod is the content of the module's go.mod.
//
//go:embed go.mod
var GoMod []byte
