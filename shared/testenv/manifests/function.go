package manifests

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/testenv/e2e"
)

// Names of the objects of the function's folder, manifests/function.
const (
	FunctionServiceAccount = "runboat-function"
	FunctionRole           = "runboat-function"
	FunctionRoleBinding    = "runboat-function"
	// FunctionTokenSecret is the Secret of type
	// kubernetes.io/service-account-token that the token controller fills
	// with a long-lived token of the function's ServiceAccount.
	FunctionTokenSecret = "runboat-function-token"
)

// functionFolder is the function's folder, inside the manifests folder.
const functionFolder = "function"

// FunctionDir is the function's kustomize folder, manifests/function (see
// Dir).
func FunctionDir() (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, functionFolder), nil
}

// RenderFunction renders manifests/function with the namespace ns (none
// when empty), as kustomize would.
func RenderFunction(ns string) ([]*unstructured.Unstructured, error) {
	dir, err := FunctionDir()
	if err != nil {
		return nil, err
	}
	return Render(dir, Options{Namespace: ns})
}

// InstallFunction installs the function's identity (manifests/function) in
// the test's namespace, as an installer would, and returns a client
// configuration acting as the function with only its long-lived token: the
// API server's address, the CA and token that the token controller wrote in
// the Secret runboat-function-token, no client certificate. The
// configuration is usable at once.
func InstallFunction(t testing.TB, env *e2e.Env) *rest.Config {
	t.Helper()
	objs, err := RenderFunction(env.Namespace)
	if err != nil {
		t.Fatalf("manifests: %v", err)
	}
	return InstallFunctionObjects(t, env, objs)
}

// InstallFunctionObjects installs objs, a render of manifests/function
// (RenderFunction) that the test may have changed, as InstallFunction does.
func InstallFunctionObjects(t testing.TB, env *e2e.Env, objs []*unstructured.Unstructured) *rest.Config {
	t.Helper()
	return installAsAdmin(t, env, func(ctx context.Context, admin *kube.Clients) (*rest.Config, error) {
		return InstallFunctionInto(ctx, admin, env.Namespace, objs)
	})
}

// InstallFunctionInto applies objs (a render of manifests/function for the
// namespace ns; nil renders it) with admin, waits for the token controller
// to fill the token Secret and for the RoleBinding to be in force, and
// returns the configuration of the function's ServiceAccount.
func InstallFunctionInto(ctx context.Context, admin *kube.Clients, ns string, objs []*unstructured.Unstructured) (*rest.Config, error) {
	if objs == nil {
		var err error
		if objs, err = RenderFunction(ns); err != nil {
			return nil, err
		}
	}
	role, err := findRole(objs, FunctionRole)
	if err != nil {
		return nil, err
	}
	// The token controller deletes a token Secret whose ServiceAccount it
	// has not seen yet: the ServiceAccount goes first, and the Secret is
	// applied again if it went.
	var token, others []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Secret" && o.GetName() == FunctionTokenSecret {
			token = append(token, o)
		} else {
			others = append(others, o)
		}
	}
	applier := admin.Applier()
	if err := applier.Apply(ctx, others); err != nil {
		return nil, fmt.Errorf("failed to install the function's identity: %w", err)
	}
	applyToken := func(ctx context.Context) error {
		if err := applier.Apply(ctx, token); err != nil {
			return fmt.Errorf("failed to install the function's token Secret: %w", err)
		}
		return nil
	}
	if err := applyToken(ctx); err != nil {
		return nil, err
	}
	secret, err := waitForToken(ctx, admin.Typed, ns, FunctionTokenSecret, applyToken)
	if err != nil {
		return nil, err
	}
	cfg := TokenSecretConfig(admin.Config, secret)
	if len(role.Rules) > 0 {
		if err := WaitForRole(ctx, cfg, ns, role.Rules[0]); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// TokenSecretConfig returns the client configuration that a filled
// ServiceAccount token Secret gives: the address and client settings of
// admin, the Secret's CA and token, and no other credential.
func TokenSecretConfig(admin *rest.Config, secret *corev1.Secret) *rest.Config {
	cfg := rest.AnonymousClientConfig(admin)
	cfg.CAFile = ""
	cfg.CAData = secret.Data[corev1.ServiceAccountRootCAKey]
	cfg.BearerToken = string(secret.Data[corev1.ServiceAccountTokenKey])
	return cfg
}

// findRole returns the Role name among objs, typed.
func findRole(objs []*unstructured.Unstructured, name string) (*rbacv1.Role, error) {
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind().String() != "Role.rbac.authorization.k8s.io" || o.GetName() != name {
			continue
		}
		role := &rbacv1.Role{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, role); err != nil {
			return nil, fmt.Errorf("failed to read the Role %s: %w", name, err)
		}
		return role, nil
	}
	return nil, fmt.Errorf("no Role %s among the objects to install", name)
}

// waitForToken waits until the token controller has filled the token
// Secret ns/name, and returns it. A Secret the controller deleted (it had
// not seen the ServiceAccount yet) is made again with recreate.
func waitForToken(ctx context.Context, cs kube.Interface, ns, name string, recreate func(context.Context) error) (*corev1.Secret, error) {
	var secret *corev1.Secret
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, recreate(ctx)
		}
		if err != nil {
			return false, fmt.Errorf("failed to read the Secret %s: %w", name, err)
		}
		secret = s
		return len(s.Data[corev1.ServiceAccountTokenKey]) > 0 && len(s.Data[corev1.ServiceAccountRootCAKey]) > 0, nil
	})
	if err != nil {
		if wait.Interrupted(err) {
			err = errors.New("no token after 30s: does kube-controller-manager run the token controller (--service-account-private-key-file)?")
		}
		return nil, fmt.Errorf("failed to wait for the token of %s: %w", name, err)
	}
	return secret, nil
}
