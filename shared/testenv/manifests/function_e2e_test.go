package manifests_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// TestE2EFunctionServiceAccountPermissions acts as the function, with only
// the long-lived token the token controller wrote: it may do what the
// function does in its namespace, read no Secret, and nothing else.
func TestE2EFunctionServiceAccountPermissions(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := manifests.InstallFunction(t, env)
	if cfg.CAData == nil {
		t.Fatal("the function's configuration has no CA")
	}
	fn := tokenClient(t, cfg)
	ns := env.Namespace
	expectUser(ctx, t, fn, "system:serviceaccount:"+ns+":"+manifests.FunctionServiceAccount)

	cases := []accessCase{
		{ns, "apps", "deployments", "", "", "list", true},
		{ns, "apps", "deployments", "", "", "watch", true},
		{ns, "apps", "deployments", "", "", "create", true},
		{ns, "apps", "deployments", "", "", "patch", true},
		{ns, "apps", "deployments", "", "", "delete", true},
		{ns, "batch", "jobs", "", "", "create", true},
		{ns, "batch", "jobs", "", "", "deletecollection", true},
		{ns, "", "pods", "log", "", "get", true},
		{ns, "", "configmaps", "", "", "get", true},
		{ns, "", "secrets", "", "", "create", true},
		{ns, "", "secrets", "", "", "patch", true},
		{ns, "networking.k8s.io", "ingresses", "", "", "patch", true},
		{ns, "coordination.k8s.io", "leases", "", "", "create", true},
		{ns, "coordination.k8s.io", "leases", "", "runboat-initializer", "update", true},
		{ns, "events.k8s.io", "events", "", "", "create", true},
		// No Secret read, its own token's included.
		{ns, "", "secrets", "", "", "list", false},
		{ns, "", "secrets", "", "", "watch", false},
		{ns, "", "secrets", "", manifests.FunctionTokenSecret, "get", false},
		{ns, "", "secrets", "", manifests.Secret, "get", false},
		// The other jobs' Leases, and what the undeployer deletes.
		{ns, "coordination.k8s.io", "leases", "", "runboat-stopper", "update", false},
		{ns, "coordination.k8s.io", "leases", "", "runboat-undeployer", "get", false},
		{ns, "apps", "deployments", "", "", "deletecollection", false},
		{ns, "", "services", "", "", "delete", false},
		{ns, "batch", "jobs", "", "", "watch", false},
		// Nothing that grants more, nothing that runs code.
		{ns, "rbac.authorization.k8s.io", "roles", "", "", "create", false},
		{ns, "rbac.authorization.k8s.io", "rolebindings", "", "", "create", false},
		{ns, "", "serviceaccounts", "token", manifests.FunctionServiceAccount, "create", false},
		{ns, "", "serviceaccounts", "", "", "impersonate", false},
		{ns, "", "pods", "", "", "create", false},
		{ns, "", "pods", "exec", "", "create", false},
		{ns, "batch", "cronjobs", "", "", "patch", false},
		// Nothing elsewhere, nothing cluster-scoped.
		{"default", "apps", "deployments", "", "", "list", false},
		{"default", "", "secrets", "", "", "list", false},
		{"", "", "namespaces", "", "", "list", false},
		{"", "", "nodes", "", "", "list", false},
		{"", "", "secrets", "", "", "list", false},
		{"", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", "create", false},
		{"", "apps", "deployments", "", "", "list", false},
	}
	checkAccess(ctx, t, fn, cases)

	// And real requests the API server refuses.
	if _, err := fn.CoreV1().Secrets(ns).Get(ctx, manifests.FunctionTokenSecret, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("reading its own token Secret: got %v, want forbidden", err)
	}
	if _, err := fn.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing the Secrets of its namespace: got %v, want forbidden", err)
	}
	if _, err := fn.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing namespaces: got %v, want forbidden", err)
	}
	if _, err := fn.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing the Deployments of another namespace: got %v, want forbidden", err)
	}
}

// tokenClient returns a client of cfg, which must hold a token and no
// client certificate (which would authenticate first, as the admin).
func tokenClient(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	if cfg.CertData != nil || cfg.KeyData != nil || cfg.CertFile != "" || cfg.BearerToken == "" {
		t.Fatal("the ServiceAccount's configuration must hold its token and no client certificate")
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// accessCase is a request of a SelfSubjectAccessReview and its answer.
type accessCase struct {
	namespace, group, resource, subresource, name, verb string
	allowed                                             bool
}

// checkAccess asks the API server whether cs may do each case.
func checkAccess(ctx context.Context, t *testing.T, cs kubernetes.Interface, cases []accessCase) {
	t.Helper()
	for _, c := range cases {
		review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: c.namespace, Group: c.group, Resource: c.resource, Subresource: c.subresource, Name: c.name, Verb: c.verb,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != c.allowed {
			t.Errorf("%s %s/%s %q (group %q) in namespace %q: allowed %v, want %v",
				c.verb, c.resource, c.subresource, c.name, c.group, c.namespace, review.Status.Allowed, c.allowed)
		}
	}
}

// expectUser checks whom the API server sees behind cs.
func expectUser(ctx context.Context, t *testing.T, cs kubernetes.Interface, want string) {
	t.Helper()
	who, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := who.Status.UserInfo.Username; got != want {
		t.Fatalf("acting as %q, want %q", got, want)
	}
}

// TestE2EFunctionKubeconfigRecipe follows the README: the function's folder
// applied with kubectl through an overlay, then the shell recipe that turns
// the token Secret into a kubeconfig, run with the real kubectl. The
// kubeconfig acts as the function.
func TestE2EFunctionKubeconfigRecipe(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := manifests.Dir()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := os.Symlink(dir, filepath.Join(tmp, "manifests")); err != nil {
		t.Fatal(err)
	}
	overlay, ok := readmeBlock(t, dir, "yaml", "# function-overlay/kustomization.yaml")
	if !ok {
		t.Fatal("README: no function-overlay/kustomization.yaml block")
	}
	overlay = strings.Replace(overlay, "namespace: "+readmeNamespace+"\n", "namespace: "+env.Namespace+"\n", 1)
	if err := os.MkdirAll(filepath.Join(tmp, "function-overlay"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "function-overlay", "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, env, "apply", "--server-side", "--dry-run=server", "-k", filepath.Join(tmp, "function-overlay"))
	kubectl(t, env, "apply", "--server-side", "-k", filepath.Join(tmp, "function-overlay"))

	recipe, ok := readmeBlock(t, dir, "sh", "# function.kubeconfig")
	if !ok {
		t.Fatal("README: no function.kubeconfig recipe")
	}
	if !strings.Contains(recipe, "NS="+readmeNamespace+"\n") {
		t.Fatalf("README: the recipe does not set NS=%s", readmeNamespace)
	}
	recipe = strings.Replace(recipe, "NS="+readmeNamespace+"\n", "NS="+env.Namespace+"\n", 1)
	// The Secret is filled by the token controller, within a moment; if it
	// went (the controller had not seen the ServiceAccount yet), the README
	// says to apply again.
	e2e.Wait(t, "the token in the Secret", func(ctx context.Context) (bool, error) {
		s, err := env.Client.CoreV1().Secrets(env.Namespace).Get(ctx, manifests.FunctionTokenSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			kubectl(t, env, "apply", "--server-side", "-k", filepath.Join(tmp, "function-overlay"))
			return false, nil
		}
		return err == nil && len(s.Data["token"]) > 0, err
	})
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", recipe)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Cluster.Kubeconfig(), "PATH="+env.Cluster.BinDir()+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's recipe: %v\n%s", err, out.String())
	}
	user := "system:serviceaccount:" + env.Namespace + ":" + manifests.FunctionServiceAccount
	if !strings.Contains(out.String(), user) {
		t.Errorf("the recipe's kubectl auth whoami printed %q, want %s", out.String(), user)
	}

	// The kubeconfig holds the token alone, and acts as the function.
	kc, err := clientcmd.LoadFromFile(filepath.Join(tmp, "function.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range kc.AuthInfos {
		if a.Token == "" || a.ClientCertificateData != nil || a.ClientCertificate != "" {
			t.Errorf("user %s of the kubeconfig: want a token alone", name)
		}
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	fn, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	expectUser(ctx, t, fn, user)
	if err := manifests.WaitForRole(ctx, cfg, env.Namespace, rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := fn.AppsV1().Deployments(env.Namespace).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("listing builds with the recipe's kubeconfig: %v", err)
	}
}
