package localcluster

import (
	"fmt"
	"regexp"
	"strings"

	"runboat.dev/shared"
)

// KwokVersion is the version of kwok and kwokctl the local control plane is
// run with. The Kubernetes version is not set here: it follows the version of
// k8s.io/client-go in shared/go.mod, so that the client and the control plane
// are always of the same minor.
const KwokVersion = "v0.8.0"

// clientGoModule is the module whose version pins the control plane.
const clientGoModule = "k8s.io/client-go"

// KubeVersion returns the Kubernetes version matching the client-go of
// shared/go.mod: client-go v0.X.Y goes with Kubernetes v1.X.Y.
func KubeVersion() (string, error) {
	m := clientGoRE.FindSubmatch(shared.GoMod)
	if m == nil {
		return "", fmt.Errorf("failed to find %s in shared/go.mod", clientGoModule)
	}
	return kubeVersionFor(string(m[1]))
}

var clientGoRE = regexp.MustCompile(`(?m)^\s*(?:require\s+)?k8s\.io/client-go\s+(v\S+)`)

// kubeVersionFor maps a client-go version to its Kubernetes version.
func kubeVersionFor(clientGo string) (string, error) {
	rest, ok := strings.CutPrefix(clientGo, "v0.")
	if !ok || rest == "" {
		return "", fmt.Errorf("unexpected %s version %q: want v0.X.Y", clientGoModule, clientGo)
	}
	return "v1." + rest, nil
}
