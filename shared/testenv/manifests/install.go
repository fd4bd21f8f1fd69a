package manifests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/testenv/e2e"
)

// TestSecretData is the content of the Secret runboat-secrets that Install
// creates: no GitHub token (anonymous calls) and no secret build variables.
var TestSecretData = map[string]string{
	"RUNBOAT_GITHUB_TOKEN":     "",
	"RUNBOAT_BUILD_SECRET_ENV": "{}",
}

// tokenLifetime is the lifetime of the ServiceAccount token that Install
// returns; it outlives any test.
const tokenLifetime = 2 * time.Hour

// Install installs the manifests in the test's namespace of the local
// cluster, as an installer would: it renders the base with the namespace
// set, creates the Secret runboat-secrets (TestSecretData) unless the test
// made one, and applies the objects with server-side apply, as the admin.
// The CronJobs are installed suspended, so that no scheduled run adds Jobs
// and pods to the test's namespace; `kubectl create job --from=cronjob/...`
// still works.
//
// It returns a client configuration acting as the ServiceAccount runboat:
// the API server's address and CA, and a token of the ServiceAccount (no
// client certificate, which would authenticate first, as the admin). The
// configuration is usable at once: Install waits until the RoleBinding is in
// force.
func Install(t testing.TB, env *e2e.Env) *rest.Config {
	t.Helper()
	return installAsAdmin(t, env, func(ctx context.Context, admin *kube.Clients) (*rest.Config, error) {
		return InstallInto(ctx, admin, env.Namespace, TestSecretData, true)
	})
}

// ReconcilerConfig returns a client configuration acting as the
// reconciler's ServiceAccount of the manifests installed in env's namespace
// (by Install), once its RoleBinding is in force.
func ReconcilerConfig(t testing.TB, env *e2e.Env) *rest.Config {
	t.Helper()
	return installAsAdmin(t, env, func(ctx context.Context, admin *kube.Clients) (*rest.Config, error) {
		cfg, err := ServiceAccountConfig(ctx, admin.Config, admin.Typed, env.Namespace, ReconcilerServiceAccount)
		if err != nil {
			return nil, err
		}
		rule := rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"create"}}
		if err := WaitForRole(ctx, cfg, env.Namespace, rule); err != nil {
			return nil, err
		}
		return cfg, nil
	})
}

// installAsAdmin runs install with the admin clients of env and a deadline,
// and fails the test on error.
func installAsAdmin(t testing.TB, env *e2e.Env, install func(context.Context, *kube.Clients) (*rest.Config, error)) *rest.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := kube.NewClients(env.Config)
	if err != nil {
		t.Fatalf("manifests: %v", err)
	}
	cfg, err := install(ctx, admin)
	if err != nil {
		t.Fatalf("manifests: %v", err)
	}
	return cfg
}

// InstallInto installs the manifests in the namespace ns, as Install does:
// the Secret runboat-secrets is created with secretData unless it exists,
// the objects are applied as admin (the CronJobs suspended if suspend is
// set), and the returned configuration acts as the ServiceAccount runboat.
func InstallInto(ctx context.Context, admin *kube.Clients, ns string, secretData map[string]string, suspend bool) (*rest.Config, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	objs, err := Render(dir, Options{Namespace: ns})
	if err != nil {
		return nil, err
	}
	return InstallObjects(ctx, admin, ns, objs, secretData, suspend)
}

// InstallObjects installs objs, the manifests as Render gave them for the
// namespace ns (an overlay's changes made), as InstallInto does.
func InstallObjects(ctx context.Context, admin *kube.Clients, ns string, objs []*unstructured.Unstructured, secretData map[string]string, suspend bool) (*rest.Config, error) {
	if suspend {
		if err := suspendCronJobs(objs); err != nil {
			return nil, err
		}
	}
	if err := createSecret(ctx, admin.Typed, ns, secretData); err != nil {
		return nil, err
	}
	if err := admin.Applier().Apply(ctx, objs); err != nil {
		return nil, fmt.Errorf("failed to install the manifests: %w", err)
	}
	cfg, err := ServiceAccountConfig(ctx, admin.Config, admin.Typed, ns, ServiceAccount)
	if err != nil {
		return nil, err
	}
	if err := WaitForRole(ctx, cfg, ns, rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list"}}); err != nil {
		return nil, err
	}
	return cfg, nil
}

// suspendCronJobs sets spec.suspend on the CronJobs among objs.
func suspendCronJobs(objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind().String() != "CronJob.batch" {
			continue
		}
		if err := unstructured.SetNestedField(o.Object, true, "spec", "suspend"); err != nil {
			return fmt.Errorf("failed to suspend the CronJob %s: %w", o.GetName(), err)
		}
	}
	return nil
}

// createSecret creates the Secret runboat-secrets with data; one that exists
// already is left as it is.
func createSecret(ctx context.Context, cs kube.Interface, ns string, data map[string]string) error {
	_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: Secret},
		StringData: data,
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create the Secret %s: %w", Secret, err)
	}
	return nil
}

// ServiceAccountConfig returns a client configuration acting as the
// ServiceAccount ns/name: the address, CA and client settings of admin,
// without its credentials, and a token of the ServiceAccount requested
// through the TokenRequest API with cs.
func ServiceAccountConfig(ctx context.Context, admin *rest.Config, cs kube.Interface, ns, name string) (*rest.Config, error) {
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(tokenLifetime.Seconds()))},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to create a token of the ServiceAccount %s/%s: %w", ns, name, err)
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

// WriteKubeconfig writes to path a kubeconfig of cfg's address, CA and
// token (a configuration ServiceAccountConfig or Install returns), as the
// user user, in the namespace ns: the identity a job or the function
// started as its own process uses.
func WriteKubeconfig(path, user, ns string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData, CertificateAuthority: cfg.CAFile}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts[user] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user, Namespace: ns}
	kc.CurrentContext = user
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("failed to write the kubeconfig of %s: %w", user, err)
	}
	return nil
}

// WaitForRole waits until cfg may do in ns the first verb of rule on its
// first resource (of its first group, and first name if any): the RBAC
// authorizer sees a new RoleBinding after a short delay, and the API server
// accepts a new token Secret's token after one too.
func WaitForRole(ctx context.Context, cfg *rest.Config, ns string, rule rbacv1.PolicyRule) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create a client of the ServiceAccount: %w", err)
	}
	resource, sub, _ := strings.Cut(rule.Resources[0], "/")
	var name string
	if len(rule.ResourceNames) > 0 {
		name = rule.ResourceNames[0]
	}
	review := &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: resource, Subresource: sub, Name: name,
			},
		},
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if apierrors.IsUnauthorized(err) {
			// A token just written in its Secret: the API server checks
			// it against the Secret as its cache has it, which may not
			// hold the token yet.
			last = "token not accepted yet"
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("failed to review the access of the ServiceAccount: %w", err)
		}
		last = got.Status.Reason
		return got.Status.Allowed, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for the Role to apply to the ServiceAccount (last reason %q): %w", last, err)
	}
	return nil
}
