package localcluster

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
)

// KwokVersion is the version of kwok and kwokctl the local control plane is
// run with. The Kubernetes version is not set here: it follows the version of
// k8s.io/client-go in shared/go.mod, so that the client and the control plane
// are always of the same minor.
const KwokVersion = "v0.8.0"

// clientGoModule is the module whose version pins the control plane.
const clientGoModule = "k8s.io/client-go"

// KubeVersion returns the Kubernetes version matching the client-go this
// binary was built with: client-go v0.X.Y goes with Kubernetes v1.X.Y.
func KubeVersion() (string, error) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", errors.New("failed to read build information: binary built without module support")
	}
	for _, dep := range info.Deps {
		if dep.Path != clientGoModule {
			continue
		}
		if dep.Replace != nil {
			dep = dep.Replace
		}
		return kubeVersionFor(dep.Version)
	}
	return "", fmt.Errorf("failed to find %s among the dependencies of %s", clientGoModule, info.Path)
}

// kubeVersionFor maps a client-go version to its Kubernetes version.
func kubeVersionFor(clientGo string) (string, error) {
	rest, ok := strings.CutPrefix(clientGo, "v0.")
	if !ok || rest == "" {
		return "", fmt.Errorf("unexpected %s version %q: want v0.X.Y", clientGoModule, clientGo)
	}
	return "v1." + rest, nil
}
