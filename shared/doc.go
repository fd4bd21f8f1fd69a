// Package shared is the library of the serverless runboat: configuration,
// the build model, kubefiles rendering, Kubernetes and GitHub access, and the
// local control plane used by development and tests. Its subpackages hold the
// code; this file only names the module.
package shared
