package manifests_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"runboat.dev/shared/config"
	"runboat.dev/shared/testenv/manifests"
)

// identity holds the ServiceAccount, Role and RoleBinding of a render,
// typed.
type identity struct {
	serviceAccount *corev1.ServiceAccount
	role           *rbacv1.Role
	roleBinding    *rbacv1.RoleBinding
}

// target returns where to decode an object of the identity of kind, nil
// for another kind.
func (id *identity) target(kind string) any {
	switch kind {
	case "ServiceAccount":
		return alloc(&id.serviceAccount)
	case "Role.rbac.authorization.k8s.io":
		return alloc(&id.role)
	case "RoleBinding.rbac.authorization.k8s.io":
		return alloc(&id.roleBinding)
	}
	return nil
}

// rendered holds the objects of a render, typed.
type rendered struct {
	identity
	// reconciler is the reconciler's own identity.
	reconciler identity
	all        []*unstructured.Unstructured
	configMap  *corev1.ConfigMap
	cronJobs   map[string]*batchv1.CronJob
}

func render(t *testing.T, opts manifests.Options) rendered {
	t.Helper()
	dir, err := manifests.Dir()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Render(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{all: objs, cronJobs: map[string]*batchv1.CronJob{}}
	decodeObjects(t, objs, func(kind, name string) any {
		id := &r.identity
		if name == manifests.ReconcilerServiceAccount {
			id = &r.reconciler
		}
		if into := id.target(kind); into != nil {
			return into
		}
		switch kind {
		case "ConfigMap":
			return alloc(&r.configMap)
		case "CronJob.batch":
			var cj *batchv1.CronJob
			r.cronJobs[name] = alloc(&cj)
			return cj
		}
		return nil
	})
	if r.serviceAccount == nil || r.role == nil || r.roleBinding == nil || r.configMap == nil {
		t.Fatalf("missing objects: ServiceAccount %v, Role %v, RoleBinding %v, ConfigMap %v",
			r.serviceAccount != nil, r.role != nil, r.roleBinding != nil, r.configMap != nil)
	}
	if r.reconciler.serviceAccount == nil || r.reconciler.role == nil || r.reconciler.roleBinding == nil {
		t.Fatalf("missing objects of the reconciler: ServiceAccount %v, Role %v, RoleBinding %v",
			r.reconciler.serviceAccount != nil, r.reconciler.role != nil, r.reconciler.roleBinding != nil)
	}
	if len(objs) != 11 {
		t.Errorf("got %d objects, want 11 (ServiceAccount, Role, RoleBinding, ConfigMap, 4 CronJobs, the reconciler's ServiceAccount, Role, RoleBinding)", len(objs))
	}
	return r
}

// decodeObjects decodes each of objs into what into returns for its group
// kind and name; nil is for an object that should not be there.
func decodeObjects(t *testing.T, objs []*unstructured.Unstructured, into func(kind, name string) any) {
	t.Helper()
	for _, o := range objs {
		kind := o.GroupVersionKind().GroupKind().String()
		target := into(kind, o.GetName())
		if target == nil {
			t.Errorf("unexpected object %s %s", kind, o.GetName())
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, target, true); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// alloc points *p at a new T and returns it, to decode an object into.
func alloc[T any](p **T) *T {
	*p = new(T)
	return *p
}

func TestCronJobs(t *testing.T) {
	r := render(t, manifests.Options{})
	want := map[string]struct{ schedule, binary, sa string }{
		manifests.CronJobInitializer: {"* * * * *", "/initializer", manifests.ServiceAccount},
		manifests.CronJobStopper:     {"*/5 * * * *", "/stopper", manifests.ServiceAccount},
		manifests.CronJobUndeployer:  {"*/5 * * * *", "/undeployer", manifests.ServiceAccount},
		manifests.CronJobReconciler:  {"*/15 * * * *", "/reconciler", manifests.ReconcilerServiceAccount},
	}
	if len(r.cronJobs) != len(want) {
		t.Errorf("got %d CronJobs, want %d", len(r.cronJobs), len(want))
	}
	for name, w := range want {
		cj, ok := r.cronJobs[name]
		if !ok {
			t.Errorf("no CronJob %s", name)
			continue
		}
		for _, problem := range checkCronJob(cj, w.schedule, w.binary, w.sa) {
			t.Errorf("CronJob %s: %s", name, problem)
		}
	}
}

// checkCronJob returns what is wrong with a CronJob of the base.
func checkCronJob(cj *batchv1.CronJob, schedule, binary, sa string) []string {
	var p []string
	fail := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	s := cj.Spec
	if s.Schedule != schedule {
		fail("schedule %q, want %q", s.Schedule, schedule)
	}
	if s.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		fail("concurrencyPolicy %q, want Forbid", s.ConcurrencyPolicy)
	}
	if s.StartingDeadlineSeconds == nil || *s.StartingDeadlineSeconds <= 0 {
		fail("no startingDeadlineSeconds")
	}
	if s.SuccessfulJobsHistoryLimit == nil || s.FailedJobsHistoryLimit == nil {
		fail("no history limits")
	}
	if s.Suspend != nil && *s.Suspend {
		fail("suspended")
	}
	js := s.JobTemplate.Spec
	if js.BackoffLimit == nil || *js.BackoffLimit != 0 {
		fail("backoffLimit %s, want 0 (the next tick retries)", ptrString(js.BackoffLimit))
	}
	if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds <= 0 {
		fail("no activeDeadlineSeconds")
	}
	ps := js.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyNever {
		fail("restartPolicy %q, want Never", ps.RestartPolicy)
	}
	if ps.ServiceAccountName != sa {
		fail("serviceAccountName %q, want %q", ps.ServiceAccountName, sa)
	}
	if ps.AutomountServiceAccountToken == nil || !*ps.AutomountServiceAccountToken {
		fail("automountServiceAccountToken not true: the job needs its token")
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		fail("uses the host's namespaces")
	}
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		fail("pod: runAsNonRoot not true")
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		fail("pod: runAsUser not set to a non-root user")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("pod: seccompProfile not RuntimeDefault")
	}
	if len(ps.Containers) != 1 {
		fail("%d containers, want 1", len(ps.Containers))
	}
	for _, c := range slices.Concat(ps.InitContainers, ps.Containers) {
		p = append(p, checkContainer(c, binary)...)
	}
	return p
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// checkContainer returns what is wrong with the container of a CronJob.
func checkContainer(c corev1.Container, binary string) []string {
	var p []string
	fail := func(format string, args ...any) {
		p = append(p, fmt.Sprintf("container %s: "+format, append([]any{c.Name}, args...)...))
	}
	// GOMEMLIMIT: at most 80 % of the memory limit, leaving room for what
	// the Go runtime does not count (the binary's code).
	limit := c.Resources.Limits.Memory()
	var gml *resource.Quantity
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			q, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
			if err != nil {
				fail("GOMEMLIMIT %q: %v", e.Value, err)
			}
			gml = &q
		}
	}
	switch {
	case limit.IsZero():
		fail("no memory limit")
	case gml == nil:
		fail("no GOMEMLIMIT: the heap doubles before a collection, past the memory limit")
	case gml.Value()*10 > limit.Value()*8:
		fail("GOMEMLIMIT %s above 80 %% of the memory limit %s", gml, limit)
	}
	if c.Image != manifests.Image {
		fail("image %q, want the placeholder %q", c.Image, manifests.Image)
	}
	if !slices.Equal(c.Command, []string{binary}) {
		fail("command %q, want [%s]", c.Command, binary)
	}
	if len(c.Args) != 0 {
		fail("args %q, want none by default", c.Args)
	}
	if sc := c.SecurityContext; sc == nil {
		fail("no securityContext")
	} else {
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			fail("readOnlyRootFilesystem not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail("allowPrivilegeEscalation not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			fail("privileged")
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			fail("runs as root")
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			fail("capabilities %+v, want drop ALL and add none", sc.Capabilities)
		}
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[res]
		lim, hasLim := c.Resources.Limits[res]
		if !hasReq || !hasLim {
			fail("%s: want a request and a limit", res)
			continue
		}
		if req.Cmp(lim) > 0 {
			fail("%s: request %s above limit %s", res, req.String(), lim.String())
		}
	}
	var fromConfigMap, fromSecret bool
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil && e.ConfigMapRef.Name == manifests.ConfigMap:
			fromConfigMap = e.ConfigMapRef.Optional == nil || !*e.ConfigMapRef.Optional
		case e.SecretRef != nil && e.SecretRef.Name == manifests.Secret:
			fromSecret = e.SecretRef.Optional != nil && !*e.SecretRef.Optional
		default:
			fail("unexpected envFrom %+v", e)
		}
	}
	if !fromConfigMap {
		fail("no envFrom of the ConfigMap %s (not optional)", manifests.ConfigMap)
	}
	if !fromSecret {
		fail("no envFrom of the Secret %s with optional: false", manifests.Secret)
	}
	ns := false
	for _, e := range c.Env {
		if e.Name == "RUNBOAT_BUILD_NAMESPACE" {
			ns = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
		}
	}
	if !ns {
		fail("RUNBOAT_BUILD_NAMESPACE is not the pod's namespace (fieldRef metadata.namespace)")
	}
	return p
}

func TestServiceAccountAndBinding(t *testing.T) {
	r := render(t, manifests.Options{})
	checkIdentity(t, r.identity, manifests.ServiceAccount)
	checkIdentity(t, r.reconciler, manifests.ReconcilerServiceAccount)
}

func checkIdentity(t *testing.T, id identity, name string) {
	t.Helper()
	r := id
	sa := r.serviceAccount
	if sa.Name != name || sa.Name == "default" {
		t.Errorf("ServiceAccount %q, want %q", sa.Name, name)
	}
	// Pods get its token only by asking for it, as the jobs' pods do.
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount: automountServiceAccountToken not false")
	}
	rb := r.roleBinding
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.role.Name}) {
		t.Errorf("RoleBinding refers to %+v, want the Role %s", rb.RoleRef, r.role.Name)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0].Kind != rbacv1.ServiceAccountKind || rb.Subjects[0].Name != sa.Name {
		t.Errorf("RoleBinding subjects %+v, want the ServiceAccount %s alone", rb.Subjects, sa.Name)
	}
}

func TestNamespaceAndImage(t *testing.T) {
	const ns, image = "builds-x", "registry.example.com/runboat/jobs:v1.2.3"
	r := render(t, manifests.Options{Namespace: ns, Image: image})
	for _, o := range r.all {
		if o.GetNamespace() != ns {
			t.Errorf("%s %s: namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), ns)
		}
	}
	for _, rb := range []*rbacv1.RoleBinding{r.roleBinding, r.reconciler.roleBinding} {
		if s := rb.Subjects; len(s) != 1 || s[0].Namespace != ns {
			t.Errorf("RoleBinding %s subjects %+v, want the namespace %q", rb.Name, s, ns)
		}
	}
	for name, cj := range r.cronJobs {
		for _, c := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers {
			if c.Image != image {
				t.Errorf("CronJob %s: image %q, want %q", name, c.Image, image)
			}
		}
	}
	dir, err := manifests.Dir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifests.Render(dir, manifests.Options{Image: "bad image"}); err == nil {
		t.Error("an invalid image was accepted")
	}
}

// TestRoleLeastPrivilege checks the Role against what it must never grant,
// and against what the jobs need.
func TestRoleLeastPrivilege(t *testing.T) {
	r := render(t, manifests.Options{})
	checkNeverGranted(t, r.role.Rules)
	needs := []grant{
		{"apps", "deployments", "get"},
		{"apps", "deployments", "list"},
		{"apps", "deployments", "watch"},
		{"apps", "deployments", "patch"},
		{"apps", "deployments", "delete"},
		{"apps", "deployments", "deletecollection"},
		{"batch", "jobs", "list"},
		{"batch", "jobs", "watch"},
		{"batch", "jobs", "create"},
		{"batch", "jobs", "patch"},
		{"batch", "jobs", "deletecollection"},
		{"", "pods", "list"},
		{"", "pods", "deletecollection"},
		{"", "pods/log", "get"},
		{"", "configmaps", "get"},
		{"", "configmaps", "create"},
		{"", "configmaps", "patch"},
		{"", "configmaps", "delete"},
		{"", "secrets", "create"},
		{"", "secrets", "patch"},
		{"", "secrets", "list"},
		{"", "services", "deletecollection"},
		{"", "persistentvolumeclaims", "delete"},
		{"networking.k8s.io", "ingresses", "create"},
		{"networking.k8s.io", "ingresses", "deletecollection"},
		{"coordination.k8s.io", "leases", "get"},
		{"coordination.k8s.io", "leases", "create"},
		{"coordination.k8s.io", "leases", "update"},
		{"events.k8s.io", "events", "create"},
	}
	denied := []grant{
		{"apps", "deployments", "create"},
		{"", "pods", "create"},
		{"batch", "cronjobs", "patch"},
		{"rbac.authorization.k8s.io", "roles", "create"},
		{"rbac.authorization.k8s.io", "rolebindings", "create"},
		{"", "serviceaccounts/token", "create"},
	}
	checkGrants(t, "the Role", r.role.Rules, needs, denied)
}

// grant is a verb on a resource of an API group.
type grant struct{ group, resource, verb string }

// checkGrants fails when rules do not allow each of needs, or allow one of
// denied (for every name).
func checkGrants(t *testing.T, role string, rules []rbacv1.PolicyRule, needs, denied []grant) {
	t.Helper()
	for _, n := range needs {
		if !allows(rules, n.group, n.resource, n.verb) {
			t.Errorf("%s does not allow %s on %s in the group %q", role, n.verb, n.resource, n.group)
		}
	}
	for _, n := range denied {
		if allows(rules, n.group, n.resource, n.verb) {
			t.Errorf("%s allows %s on %s in the group %q (for every name)", role, n.verb, n.resource, n.group)
		}
	}
}

// TestReconcilerRoleLeastPrivilege checks the reconciler's Role: what it
// needs to deploy and undeploy builds as the webhook does, keep its Lease
// and its cache, and nothing of the Jobs, pods, logs or Secrets' values.
func TestReconcilerRoleLeastPrivilege(t *testing.T) {
	rules := render(t, manifests.Options{}).reconciler.role.Rules
	checkNeverGranted(t, rules)
	needs := []grant{
		{"apps", "deployments", "list"},
		{"apps", "deployments", "create"},
		{"apps", "deployments", "patch"},
		{"apps", "deployments", "delete"},
		{"", "configmaps", "create"},
		{"", "configmaps", "patch"},
		{"", "secrets", "create"},
		{"", "secrets", "patch"},
		{"", "services", "create"},
		{"", "persistentvolumeclaims", "patch"},
		{"networking.k8s.io", "ingresses", "create"},
		{"coordination.k8s.io", "leases", "create"},
		{"events.k8s.io", "events", "create"},
	}
	denied := []grant{
		{"apps", "deployments", "watch"},
		{"apps", "deployments", "deletecollection"},
		{"", "configmaps", "get"},
		{"", "configmaps", "update"},
		{"", "configmaps", "delete"},
		{"", "secrets", "get"},
		{"", "secrets", "list"},
		{"batch", "jobs", "create"},
		{"batch", "jobs", "list"},
		{"", "pods", "list"},
		{"", "pods/log", "get"},
		{"coordination.k8s.io", "leases", "get"},
		{"coordination.k8s.io", "leases", "update"},
		{"rbac.authorization.k8s.io", "roles", "create"},
	}
	checkGrants(t, "the reconciler's Role", rules, needs, denied)
	named := map[string][]string{"configmaps": {"runboat-reconciler-cache"}, "leases": {"runboat-reconciler"}}
	for _, r := range rules {
		if len(r.ResourceNames) == 0 {
			continue
		}
		if len(r.Resources) != 1 || !slices.Equal(named[r.Resources[0]], r.ResourceNames) || !slices.Equal(r.Verbs, []string{"get", "update"}) {
			t.Errorf("unexpected rule by name: %+v", r)
		}
	}
}

// allows tells whether rules grant verb on resource of group (names aside).
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if len(r.ResourceNames) == 0 &&
			(slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, rbacv1.APIGroupAll)) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, rbacv1.ResourceAll)) &&
			(slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, rbacv1.VerbAll)) {
			return true
		}
	}
	return false
}

// jobsConfig is what the jobs read between them.
type jobsConfig struct {
	config.Builds
	config.Quotas
	config.GitHub
	config.Cleanup
}

// TestConfig checks that the ConfigMap holds the non-secret settings, that
// its example values are a valid configuration once the namespace and the
// Secret are added (as in a job's pod), and that nothing secret is in it.
func TestConfig(t *testing.T) {
	r := render(t, manifests.Options{})
	data := r.configMap.Data
	want := []string{
		"RUNBOAT_REPOS", "RUNBOAT_BUILD_DOMAIN", "RUNBOAT_BUILD_ENV",
		"RUNBOAT_BUILD_TEMPLATE_VARS", "RUNBOAT_MAX_INITIALIZING", "RUNBOAT_MAX_STARTED",
		"RUNBOAT_MAX_DEPLOYED", "RUNBOAT_BASE_URL", "RUNBOAT_DISABLE_COMMIT_STATUSES",
		"RUNBOAT_DEPLOYMENT_RESOURCE_TYPES", "RUNBOAT_NO_CLEANUP_JOB",
	}
	for _, k := range want {
		if _, ok := data[k]; !ok {
			t.Errorf("ConfigMap %s: no %s", r.configMap.Name, k)
		}
	}
	for k := range data {
		if !slices.Contains(want, k) {
			t.Errorf("ConfigMap %s: unexpected key %s (secrets belong in the Secret %s; RUNBOAT_BUILD_NAMESPACE is the pod's namespace)", r.configMap.Name, k, manifests.Secret)
		}
	}
	environ := map[string]string{"RUNBOAT_BUILD_NAMESPACE": "builds"}
	for k, v := range data {
		environ[k] = v
	}
	for k, v := range manifests.TestSecretData {
		environ[k] = v
	}
	var cfg jobsConfig
	if err := config.Load(environ, &cfg); err != nil {
		t.Fatalf("the example configuration is invalid: %v", err)
	}
	if len(cfg.Repos) == 0 || !cfg.Supported("OCA/server-tools", "16.0") || cfg.Supported("OCA/server-tools", "16X0") {
		t.Errorf("RUNBOAT_REPOS: the example rule does not match oca/* 16.0 exactly")
	}
}
