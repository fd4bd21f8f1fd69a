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

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/manifests"
)

// TestE2EInstallAndManualRun installs the manifests on the local control
// plane (a server-side dry run first, then the real apply), then does a
// manual run as the README says, with the real kubectl.
func TestE2EInstallAndManualRun(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := manifests.Dir()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Render(dir, manifests.Options{Namespace: env.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	applier := newApplier(t, env.Config)

	// The dry run accepts the base, and changes nothing.
	if err := applier.DryRun(ctx, objs); err != nil {
		t.Fatalf("server-side dry run: %v", err)
	}
	_, err = env.Client.BatchV1().CronJobs(env.Namespace).Get(ctx, manifests.CronJobInitializer, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("after the dry run, getting the CronJob: got %v, want not found", err)
	}
	// And it refuses what the API server refuses.
	broken := deepCopy(objs)
	for _, o := range broken {
		if o.GetKind() == "CronJob" {
			if err := unstructured.SetNestedField(o.Object, "every minute", "spec", "schedule"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := applier.DryRun(ctx, broken); err == nil {
		t.Fatal("the dry run accepted CronJobs with an invalid schedule")
	}

	manifests.Install(t, env)
	cronJob, err := env.Client.BatchV1().CronJobs(env.Namespace).Get(ctx, manifests.CronJobInitializer, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The manual run of the README.
	kubectl(t, env, "create", "job", "--from=cronjob/"+manifests.CronJobInitializer, "manual-1")
	job, err := env.Client.BatchV1().Jobs(env.Namespace).Get(ctx, "manual-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the manual run made no Job: %v", err)
	}
	if got := job.Annotations["cronjob.kubernetes.io/instantiate"]; got != "manual" {
		t.Errorf("Job annotation cronjob.kubernetes.io/instantiate %q, want manual", got)
	}
	owner := metav1.GetControllerOf(job)
	if owner == nil || owner.Kind != "CronJob" || owner.UID != cronJob.UID {
		t.Errorf("Job controller %+v, want the CronJob %s", owner, cronJob.Name)
	}
	want := cronJob.Spec.JobTemplate.Spec
	if !equality.Semantic.DeepEqual(job.Spec.Template.Spec, want.Template.Spec) {
		t.Errorf("the Job's pod spec differs from the CronJob's:\n got %+v\nwant %+v", job.Spec.Template.Spec, want.Template.Spec)
	}
	if *job.Spec.BackoffLimit != *want.BackoffLimit || *job.Spec.ActiveDeadlineSeconds != *want.ActiveDeadlineSeconds {
		t.Errorf("the Job's limits differ from the CronJob's")
	}

	// The Job controller creates its pod, which gets the ServiceAccount's
	// token, and (on kwok) succeeds.
	var pod corev1.Pod
	e2e.Wait(t, "the Job's pod", func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=manual-1"})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = pods.Items[0]
		return true, nil
	})
	if pod.Spec.ServiceAccountName != manifests.ServiceAccount || !hasTokenVolume(pod.Spec) {
		t.Errorf("the Job's pod runs as %q, token mounted %v; want %q with its token",
			pod.Spec.ServiceAccountName, hasTokenVolume(pod.Spec), manifests.ServiceAccount)
	}
	env.WaitJob(t, "manual-1", batchv1.JobComplete)
}

// TestE2EServiceAccountPermissions acts as the jobs' ServiceAccount, with
// only its token: it may do what the jobs do in its namespace, and nothing
// that would let it grant itself more, or reach another namespace.
func TestE2EServiceAccountPermissions(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	saCfg := manifests.Install(t, env)
	sa := tokenClient(t, saCfg)
	ns := env.Namespace

	expectUser(ctx, t, sa, "system:serviceaccount:"+ns+":"+manifests.ServiceAccount)

	cases := []accessCase{
		{ns, "apps", "deployments", "", "", "list", true},
		{ns, "apps", "deployments", "", "", "watch", true},
		{ns, "apps", "deployments", "", "", "patch", true},
		{ns, "apps", "deployments", "", "", "delete", true},
		{ns, "apps", "deployments", "", "", "deletecollection", true},
		{ns, "batch", "jobs", "", "", "create", true},
		{ns, "batch", "jobs", "", "", "deletecollection", true},
		{ns, "", "pods", "", "", "list", true},
		{ns, "", "pods", "", "", "deletecollection", true},
		{ns, "", "pods", "log", "", "get", true},
		{ns, "", "configmaps", "", "", "create", true},
		{ns, "", "secrets", "", "", "patch", true},
		{ns, "", "persistentvolumeclaims", "", "", "delete", true},
		{ns, "networking.k8s.io", "ingresses", "", "", "create", true},
		{ns, "coordination.k8s.io", "leases", "", "", "create", true},
		{ns, "coordination.k8s.io", "leases", "", "", "update", true},
		{ns, "events.k8s.io", "events", "", "", "create", true},
		// Builds are created by the webhook function, pods by the Job
		// controller.
		{ns, "apps", "deployments", "", "", "create", false},
		{ns, "", "pods", "", "", "create", false},
		{ns, "", "pods", "exec", "", "create", false},
		// Nothing that grants more.
		{ns, "rbac.authorization.k8s.io", "roles", "", "", "create", false},
		{ns, "rbac.authorization.k8s.io", "roles", "", "", "escalate", false},
		{ns, "rbac.authorization.k8s.io", "rolebindings", "", "", "create", false},
		{ns, "rbac.authorization.k8s.io", "rolebindings", "", "", "patch", false},
		{ns, "", "serviceaccounts", "", "", "create", false},
		{ns, "", "serviceaccounts", "token", "", "create", false},
		{ns, "", "serviceaccounts", "", "", "impersonate", false},
		{ns, "batch", "cronjobs", "", "", "patch", false},
		// Nothing elsewhere.
		{"default", "", "secrets", "", "", "list", false},
		{"default", "apps", "deployments", "", "", "list", false},
		{"", "", "namespaces", "", "", "list", false},
		{"", "", "secrets", "", "", "list", false},
	}
	checkAccess(ctx, t, sa, cases)

	// Real requests, as the jobs make them.
	if _, err := sa.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "runboat/build", Limit: 500}); err != nil {
		t.Errorf("listing builds: %v", err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "runboat-initializer"}}
	lease, err := sa.CoordinationV1().Leases(ns).Create(ctx, lease, metav1.CreateOptions{})
	if err != nil {
		t.Errorf("creating a Lease: %v", err)
	} else {
		lease.Spec.HolderIdentity = ptr.To("initializer-1")
		if _, err := sa.CoordinationV1().Leases(ns).Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
			t.Errorf("updating a Lease: %v", err)
		}
	}
	// Server-side apply that creates (patch and create), dry run first, as
	// the jobs apply what the kubefiles render.
	applier := newApplier(t, saCfg)
	build := []*unstructured.Unstructured{
		object("v1", "ConfigMap", ns, "b1-runboat-vars", map[string]any{"data": map[string]any{"slug": "b1"}}),
		object("v1", "Secret", ns, "b1-env", map[string]any{"stringData": map[string]any{"K": "v"}}),
	}
	if err := applier.Apply(ctx, build); err != nil {
		t.Errorf("applying a build's objects: %v", err)
	}
	job := object("batch/v1", "Job", ns, "b1-initialize", map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"restartPolicy":                "Never",
		"automountServiceAccountToken": false,
		"containers":                   []any{map[string]any{"name": "init", "image": "busybox"}},
	}}}})
	if err := applier.DryRun(ctx, []*unstructured.Unstructured{job}); err != nil {
		t.Errorf("applying an init Job (dry run): %v", err)
	}

	// And what it must not do, refused by the API server.
	if _, err := sa.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing the Secrets of another namespace: got %v, want forbidden", err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "more"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
	}
	if _, err := sa.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("creating a Role: got %v, want forbidden", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "more"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: manifests.ServiceAccount, Namespace: ns}},
	}
	if _, err := sa.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("creating a RoleBinding: got %v, want forbidden", err)
	}
}

// TestE2EReconcilerServiceAccountPermissions acts as the reconciler's
// ServiceAccount: it may deploy and undeploy builds as the webhook does,
// keep its Lease and its cache, and nothing else (the reconciler's own
// end-to-end test, in shared/jobs/reconciler, runs a real pass with it).
func TestE2EReconcilerServiceAccountPermissions(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	manifests.Install(t, env)
	sa := tokenClient(t, manifests.ReconcilerConfig(t, env))
	ns := env.Namespace

	expectUser(ctx, t, sa, "system:serviceaccount:"+ns+":"+manifests.ReconcilerServiceAccount)
	checkAccess(ctx, t, sa, []accessCase{
		{ns, "apps", "deployments", "", "", "list", true},
		{ns, "apps", "deployments", "", "", "create", true},
		{ns, "apps", "deployments", "", "", "patch", true},
		{ns, "apps", "deployments", "", "", "delete", true},
		{ns, "", "configmaps", "", "", "create", true},
		{ns, "", "configmaps", "", "", "patch", true},
		{ns, "", "configmaps", "", "runboat-reconciler-cache", "get", true},
		{ns, "", "configmaps", "", "runboat-reconciler-cache", "update", true},
		{ns, "", "secrets", "", "", "create", true},
		{ns, "", "services", "", "", "patch", true},
		{ns, "", "persistentvolumeclaims", "", "", "create", true},
		{ns, "networking.k8s.io", "ingresses", "", "", "patch", true},
		{ns, "coordination.k8s.io", "leases", "", "", "create", true},
		{ns, "coordination.k8s.io", "leases", "", "runboat-reconciler", "update", true},
		{ns, "events.k8s.io", "events", "", "", "create", true},
		// Not the other jobs' Lease, nor the other ConfigMaps' content.
		{ns, "coordination.k8s.io", "leases", "", "runboat-undeployer", "update", false},
		{ns, "", "configmaps", "", "runboat-config", "get", false},
		{ns, "", "configmaps", "", "", "list", false},
		{ns, "", "configmaps", "", "", "delete", false},
		// Nothing of the Secrets, Jobs, pods and logs.
		{ns, "", "secrets", "", "", "get", false},
		{ns, "", "secrets", "", "", "list", false},
		{ns, "batch", "jobs", "", "", "create", false},
		{ns, "batch", "jobs", "", "", "list", false},
		{ns, "", "pods", "", "", "list", false},
		{ns, "", "pods", "log", "", "get", false},
		{ns, "apps", "deployments", "", "", "watch", false},
		{ns, "apps", "deployments", "", "", "deletecollection", false},
		// Nothing that grants more, nothing elsewhere.
		{ns, "rbac.authorization.k8s.io", "roles", "", "", "create", false},
		{ns, "rbac.authorization.k8s.io", "rolebindings", "", "", "create", false},
		{ns, "", "serviceaccounts", "token", "", "create", false},
		{"default", "apps", "deployments", "", "", "create", false},
		{"", "", "namespaces", "", "", "list", false},
	})
	if _, err := sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing the Secrets: got %v, want forbidden", err)
	}
}

// TestE2EREADMEInstall follows the README's installation with the real
// kubectl: the Secret from an env file, the example overlay applied with a
// server-side dry run then for real, and a manual run.
func TestE2EREADMEInstall(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	overlay := writeREADMEOverlay(t, env.Namespace)

	envFile := filepath.Join(t.TempDir(), "runboat-secrets.env")
	const secretEnv = `{"PGPASSWORD": "not a secret"}`
	if err := os.WriteFile(envFile, []byte("RUNBOAT_GITHUB_TOKEN=\nRUNBOAT_BUILD_SECRET_ENV="+secretEnv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, env, "create", "secret", "generic", manifests.Secret, "--from-env-file="+envFile)
	secret, err := env.Client.CoreV1().Secrets(env.Namespace).Get(ctx, manifests.Secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(secret.Data["RUNBOAT_BUILD_SECRET_ENV"]); got != secretEnv {
		t.Errorf("RUNBOAT_BUILD_SECRET_ENV from the env file: %q, want %q", got, secretEnv)
	}
	if _, ok := secret.Data["RUNBOAT_GITHUB_TOKEN"]; !ok {
		t.Error("no RUNBOAT_GITHUB_TOKEN in the Secret")
	}

	kubectl(t, env, "apply", "--server-side", "--dry-run=server", "-k", overlay)
	if _, err := env.Client.BatchV1().CronJobs(env.Namespace).Get(ctx, manifests.CronJobInitializer, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after the dry run, getting the CronJob: got %v, want not found", err)
	}
	kubectl(t, env, "apply", "--server-side", "-k", overlay)
	for _, name := range manifests.CronJobs {
		if _, err := env.Client.BatchV1().CronJobs(env.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("CronJob %s: %v", name, err)
		}
	}
	kubectl(t, env, "create", "job", "--from=cronjob/"+manifests.CronJobInitializer, "now")
	job, err := env.Client.BatchV1().Jobs(env.Namespace).Get(ctx, "now", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the manual run made no Job: %v", err)
	}
	if img := job.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/runboat-jobs:v1.0.0" {
		t.Errorf("the manual Job runs %q, want the overlay's image", img)
	}
}

// kubectl runs the local cluster's kubectl as its admin, in the test's
// namespace, and returns its output.
func kubectl(t *testing.T, env *e2e.Env, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"--kubeconfig", env.Cluster.Kubeconfig(), "-n", env.Namespace}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(env.Cluster.BinDir(), "kubectl"), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// newApplier returns an Applier acting with cfg.
func newApplier(t *testing.T, cfg *rest.Config) *kube.Applier {
	t.Helper()
	clients, err := kube.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return clients.Applier()
}

func object(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: fields}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetNamespace(ns)
	o.SetName(name)
	return o
}

func deepCopy(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

// hasTokenVolume tells whether a pod mounts a ServiceAccount token.
func hasTokenVolume(spec corev1.PodSpec) bool {
	for _, v := range spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return true
			}
		}
	}
	return false
}
