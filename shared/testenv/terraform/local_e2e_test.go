package terraform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// TestTerraformLocalExample applies examples/local to the local cluster,
// into a namespace of its own, checks what it made and that the function's
// credential it outputs is real and no more than the function needs, then
// destroys it and checks that the namespace and the credential are gone.
func TestTerraformLocalExample(t *testing.T) {
	tf := FromEnv(t)
	env := e2e.New(t)
	ctx := context.Background()
	dir := filepath.Join(Copy(t), "examples/local")
	l := applyLocal(t, tf, env, dir)
	// Applied again, nothing changes (exit code 2 would say changes).
	if _, err := tf.Run(dir, append([]string{"plan", "-detailed-exitcode", "-no-color"}, l.vars...)...); err != nil {
		t.Errorf("a plan after the apply is not empty: %v", err)
	}

	t.Run("objects", func(t *testing.T) { checkObjects(t, env.Client, dir, l.ns) })

	fn := functionClient(t, tf, dir, l.ns)
	t.Run("credential can", func(t *testing.T) {
		if err := canDeploy(fn, l.ns); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("credential cannot", func(t *testing.T) { checkCannot(t, fn, l.ns) })
	f := startLocalFunction(t, strings.TrimSpace(tf.Must(t, dir, "output", "-raw", "function_kubeconfig")), l.ns)
	var build *model.Ref
	t.Run("function", func(t *testing.T) { build = checkFunction(t, env, f, l.ns) })
	t.Run("jobs image", func(t *testing.T) { checkJobsImage(t, env, f, build, l.ns) })

	l.destroy(t)
	got, err := env.Client.CoreV1().Namespaces().Get(ctx, l.ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		t.Fatal(err)
	case got.DeletionTimestamp == nil:
		t.Errorf("namespace %s still there after destroy", l.ns)
	}
	// The token Secret is gone: the token no longer authenticates.
	e2e.Wait(t, "the function's token to be revoked", func(ctx context.Context) (bool, error) {
		_, err := fn.AppsV1().Deployments(l.ns).List(ctx, metav1.ListOptions{})
		return apierrors.IsUnauthorized(err), nil
	})
}

// TestTerraformLocalExampleWeakRole shows that the credential check
// catches a Role that lacks what the function needs: with the create verb
// taken from the Deployments rule of the Role file, the function's
// credential can no longer make a build.
func TestTerraformLocalExampleWeakRole(t *testing.T) {
	tf := FromEnv(t)
	env := e2e.New(t)
	dir := filepath.Join(Copy(t), "examples/local")
	p := roleFilePath(dir)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	weak := deploymentsCreate.ReplaceAllString(string(data), "$1")
	if weak == string(data) {
		t.Fatalf("%s: no Deployments rule to weaken (the test must follow the Role file)", p)
	}
	if err := os.WriteFile(p, []byte(weak), 0o644); err != nil {
		t.Fatal(err)
	}
	l := applyLocal(t, tf, env, dir)
	fn := functionClient(t, tf, dir, l.ns)
	if err := canDeploy(fn, l.ns); err == nil || !apierrors.IsForbidden(errors.Unwrap(err)) {
		t.Errorf("the check of a Role without create on Deployments: %v, want Forbidden", err)
	}
	l.destroy(t)
}

// deploymentsCreate is the create verb of the Deployments rule of a Role
// file: `resources: ["deployments"]` then its verbs line.
var deploymentsCreate = regexp.MustCompile(`(resources: \["deployments"\]\n\s*verbs: \[[^\]]*)"create", `)

// local is an apply of examples/local into a namespace of its own.
type local struct {
	tf        *Tofu
	cs        kubernetes.Interface
	dir, ns   string
	vars      []string
	destroyed bool
}

// applyLocal applies the copy of examples/local in dir to the local
// cluster, into the test namespace's name with "-tf" added; what is left
// when the test ends is destroyed.
func applyLocal(t *testing.T, tf *Tofu, env *e2e.Env, dir string) *local {
	t.Helper()
	l := &local{tf: tf, cs: env.Client, dir: dir, ns: env.Namespace + "-tf"}
	l.vars = []string{
		"-var", "kubeconfig_path=" + env.Cluster.Kubeconfig(),
		"-var", "cluster_endpoint=" + env.Config.Host,
		"-var", "namespace=" + l.ns,
		"-var", "github_token=ghp_local",
	}
	tf.Must(t, dir, "init", "-input=false", "-no-color")
	t.Cleanup(func() {
		if l.destroyed {
			return
		}
		// The test stopped half-way: leave nothing behind.
		if err := e2e.DropBuildFinalizers(context.Background(), env.Client, l.ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if _, err := tf.Run(dir, append([]string{"destroy", "-auto-approve", "-no-color"}, l.vars...)...); err != nil {
			t.Errorf("cleanup: %v", err)
			_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), l.ns, metav1.DeleteOptions{})
		}
	})
	tf.Must(t, dir, append([]string{"apply", "-auto-approve", "-no-color"}, l.vars...)...)
	return l
}

// destroy destroys the apply. A build left by a failed check would keep
// the namespace forever (its finalizer waits for an undeployer): its
// finalizer goes first, so that the destroy reports on terraform alone.
func (l *local) destroy(t *testing.T) {
	t.Helper()
	if err := e2e.DropBuildFinalizers(context.Background(), l.cs, l.ns); err != nil {
		t.Fatal(err)
	}
	l.tf.Must(t, l.dir, append([]string{"destroy", "-auto-approve", "-no-color"}, l.vars...)...)
	l.destroyed = true
}

// functionClient is a client made from the function_kubeconfig output
// alone, once its RoleBinding is in force.
func functionClient(t *testing.T, tf *Tofu, dir, ns string) kubernetes.Interface {
	t.Helper()
	kubeconfig := strings.TrimSpace(tf.Must(t, dir, "output", "-raw", "function_kubeconfig"))
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kubeconfig))
	if err != nil {
		t.Fatalf("the function_kubeconfig output is not a kubeconfig: %v", err)
	}
	if cfg.BearerToken == "" || len(cfg.CertData) > 0 || len(cfg.KeyData) > 0 || cfg.Username != "" {
		t.Fatal("the function_kubeconfig output must hold a token and no other credential")
	}
	fn, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	list := rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list"}}
	if err := manifests.WaitForRole(context.Background(), cfg, ns, list); err != nil {
		t.Fatalf("the function's credential never got its Role: %v", err)
	}
	return fn
}

// checkObjects reads, as the admin, what the apply made in ns.
func checkObjects(t *testing.T, cs kubernetes.Interface, dir, ns string) {
	ctx := context.Background()
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, "runboat-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Secret the CronJobs require: %v", err)
	}
	want := map[string]string{"RUNBOAT_GITHUB_TOKEN": "ghp_local", "RUNBOAT_BUILD_SECRET_ENV": `{"PGPASSWORD":"local"}`}
	for k, v := range want {
		if got := string(s.Data[k]); got != v {
			t.Errorf("runboat-secrets %s = %q, want %q", k, got, v)
		}
	}

	q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "runboat", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The defaults: 6 started builds, 2 initializing, 10 deployed, 25 %
	// headroom.
	for k, v := range map[corev1.ResourceName]string{
		"pods": "17", "requests.cpu": "3250m", "limits.cpu": "9250m",
		"persistentvolumeclaims": "10", "requests.storage": "2500Mi",
	} {
		if got := q.Spec.Hard[k]; got.String() != v {
			t.Errorf("ResourceQuota %s = %s, want %s", k, got.String(), v)
		}
	}
	if _, err := cs.CoreV1().LimitRanges(ns).Get(ctx, "runboat", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}

	// The local cluster enforces no NetworkPolicy (kwok runs no pods):
	// check what it says.
	np, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "runboat-builds-egress", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel := np.Spec.PodSelector.MatchExpressions
	if len(sel) != 1 || sel[0].Key != "runboat/build" || sel[0].Operator != metav1.LabelSelectorOpExists {
		t.Errorf("NetworkPolicy selects %v, want the pods labelled runboat/build", np.Spec.PodSelector)
	}
	var except []string
	for _, r := range np.Spec.Egress {
		for _, p := range r.To {
			if p.IPBlock != nil {
				except = append(except, p.IPBlock.Except...)
			}
		}
	}
	if !slices.Contains(except, "169.254.169.254/32") {
		t.Errorf("NetworkPolicy lets build pods reach the metadata endpoint: except %v", except)
	}

	// The Role says exactly what the Role file says.
	role, err := cs.RbacV1().Roles(ns).Get(ctx, "runboat-function", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	file := roleFile(t, dir)
	if !reflect.DeepEqual(normalize(role.Rules), normalize(file.Rules)) {
		t.Errorf("Role rules %v, want those of the Role file %v", role.Rules, file.Rules)
	}
}

// roleFilePath is the Role file the namespace module reads, in the copy
// that holds dir.
func roleFilePath(dir string) string {
	return filepath.Join(dir, "../../../manifests/function/role.yaml")
}

// roleFile reads the Role file of roleFilePath.
func roleFile(t *testing.T, dir string) *rbacv1.Role {
	p := roleFilePath(dir)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var r rbacv1.Role
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return &r
}

// normalize makes rules that grant the same compare equal: the provider
// keeps verbs, groups, resources and names as sets (their order is its
// own), and an empty list is a missing one.
func normalize(rules []rbacv1.PolicyRule) string {
	for i := range rules {
		r := &rules[i]
		for _, l := range []*[]string{&r.Verbs, &r.APIGroups, &r.Resources, &r.ResourceNames, &r.NonResourceURLs} {
			if len(*l) == 0 {
				*l = nil
			}
			slices.Sort(*l)
		}
	}
	b, _ := json.Marshal(rules)
	return string(b)
}

// canDeploy does, with the function's credential, what the webhook does: a
// build's Deployment by server-side apply (a dry run, then for real), and
// the list of builds.
func canDeploy(cs kubernetes.Interface, ns string) error {
	ctx := context.Background()
	labels := map[string]string{"runboat/build": "tf-check"}
	d := appsv1ac.Deployment("tf-check", ns).
		WithLabels(labels).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(0).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(labels).
				WithSpec(corev1ac.PodSpec().
					WithAutomountServiceAccountToken(false).
					WithContainers(corev1ac.Container().WithName("app").WithImage("example.invalid/app:1")))))
	for _, dry := range [][]string{{metav1.DryRunAll}, nil} {
		if _, err := cs.AppsV1().Deployments(ns).Apply(ctx, d, metav1.ApplyOptions{FieldManager: "runboat", DryRun: dry}); err != nil {
			return fmt.Errorf("server-side apply of a Deployment (dry run %v): %w", dry, err)
		}
	}
	list, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "runboat/build"})
	if err != nil {
		return fmt.Errorf("list the Deployments: %w", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "tf-check" {
		return fmt.Errorf("listed %d Deployments, want tf-check only", len(list.Items))
	}
	return nil
}

// checkCannot checks that the function's credential reads no Secret and
// nothing outside the namespace.
func checkCannot(t *testing.T, cs kubernetes.Interface, ns string) {
	ctx := context.Background()
	forbidden := map[string]func() error{
		"get the Secret runboat-secrets": func() error {
			_, err := cs.CoreV1().Secrets(ns).Get(ctx, "runboat-secrets", metav1.GetOptions{})
			return err
		},
		"list Secrets": func() error {
			_, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		},
		"list Deployments of the namespace default": func() error {
			_, err := cs.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{})
			return err
		},
		"create a Deployment in the namespace default": func() error {
			_, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		},
		"list Namespaces": func() error {
			_, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return err
		},
		"create a RoleBinding": func() error {
			_, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "x"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
			}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		},
	}
	for what, try := range forbidden {
		if err := try(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", what, err)
		}
	}
}
