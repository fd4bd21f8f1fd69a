// Package testenv holds what exists for development and tests only, never
// linked into the function or the jobs: the local control plane
// (localcluster, and its command cmd/localcluster), the end-to-end helper
// (e2e), fixtures of the jobs' plan tests (jobstest) and the installer of
// manifests/ into a test namespace (manifests).
package testenv
