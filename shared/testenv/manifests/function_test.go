package manifests_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"runboat.dev/shared/testenv/manifests"
)

// renderedFunction holds the objects of manifests/function, typed.
type renderedFunction struct {
	identity
	token *corev1.Secret
}

func renderFunction(t *testing.T, ns string) renderedFunction {
	t.Helper()
	objs, err := manifests.RenderFunction(ns)
	if err != nil {
		t.Fatal(err)
	}
	var r renderedFunction
	decodeObjects(t, objs, func(kind, _ string) any {
		if into := r.target(kind); into != nil {
			return into
		}
		if kind == "Secret" {
			return alloc(&r.token)
		}
		return nil
	})
	for _, o := range objs {
		if ns != "" && o.GetNamespace() != ns {
			t.Errorf("%s %s: namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), ns)
		}
	}
	if len(objs) != 4 || r.serviceAccount == nil || r.role == nil || r.roleBinding == nil || r.token == nil {
		t.Fatalf("got %d objects, want the ServiceAccount, Role, RoleBinding and token Secret", len(objs))
	}
	return r
}

func TestFunctionIdentity(t *testing.T) {
	const ns = "builds-x"
	r := renderFunction(t, ns)
	if r.serviceAccount.Name != manifests.FunctionServiceAccount || r.role.Name != manifests.FunctionRole || r.roleBinding.Name != manifests.FunctionRoleBinding {
		t.Errorf("names %q, %q, %q; want %q, %q, %q", r.serviceAccount.Name, r.role.Name, r.roleBinding.Name,
			manifests.FunctionServiceAccount, manifests.FunctionRole, manifests.FunctionRoleBinding)
	}
	if sa := r.serviceAccount; sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("ServiceAccount: automountServiceAccountToken not false")
	}
	rb := r.roleBinding
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: manifests.FunctionRole}) {
		t.Errorf("RoleBinding refers to %+v, want the Role %s", rb.RoleRef, manifests.FunctionRole)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0] != (rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: manifests.FunctionServiceAccount, Namespace: ns}) {
		t.Errorf("RoleBinding subjects %+v, want the ServiceAccount %s/%s alone", rb.Subjects, ns, manifests.FunctionServiceAccount)
	}
	tok := r.token
	if tok.Name != manifests.FunctionTokenSecret || tok.Type != corev1.SecretTypeServiceAccountToken ||
		tok.Annotations[corev1.ServiceAccountNameKey] != manifests.FunctionServiceAccount || len(tok.Data)+len(tok.StringData) != 0 {
		t.Errorf("token Secret %s of type %q, annotations %v, %d values; want %s, %s, for %s, empty",
			tok.Name, tok.Type, tok.Annotations, len(tok.Data)+len(tok.StringData),
			manifests.FunctionTokenSecret, corev1.SecretTypeServiceAccountToken, manifests.FunctionServiceAccount)
	}
}

// TestFunctionRoleLeastPrivilege checks the function's Role against what it
// must never grant; its end-to-end tests prove that it is enough and that
// each rule is needed.
func TestFunctionRoleLeastPrivilege(t *testing.T) {
	r := renderFunction(t, "")
	checkNeverGranted(t, r.role.Rules)
	denied := []struct{ group, resource, verb string }{
		// The function reads no Secret.
		{"", "secrets", "get"},
		{"", "secrets", "list"},
		{"", "secrets", "watch"},
		{"", "secrets", "delete"},
		// The undeployer deletes the objects of a build, the function only
		// the Deployment.
		{"apps", "deployments", "deletecollection"},
		{"", "configmaps", "deletecollection"},
		{"", "services", "delete"},
		{"", "pods", "create"},
		{"", "pods", "get"},
		{"batch", "cronjobs", "patch"},
		{"rbac.authorization.k8s.io", "roles", "create"},
		{"rbac.authorization.k8s.io", "rolebindings", "create"},
		{"", "serviceaccounts/token", "create"},
		{"coordination.k8s.io", "leases", "update"}, // by name only
		{"coordination.k8s.io", "leases", "delete"},
	}
	for _, n := range denied {
		if allows(r.role.Rules, n.group, n.resource, n.verb) {
			t.Errorf("the Role allows %s on %s in the group %q", n.verb, n.resource, n.group)
		}
	}
	for _, rule := range r.role.Rules {
		if slices.Contains(rule.Verbs, "watch") && !slices.Equal(rule.Resources, []string{"deployments"}) {
			t.Errorf("rule %+v: the function watches the builds only", rule)
		}
		if len(rule.ResourceNames) > 0 && !slices.Equal(rule.ResourceNames, []string{"runboat-initializer"}) {
			t.Errorf("rule %+v: names other than the initializer's Lease", rule)
		}
	}
}

// checkNeverGranted fails for rules that grant what neither Role may: all
// verbs, escalation, RBAC and authentication groups, ServiceAccounts,
// exec, nodes and namespaces, non-resource URLs, create by name.
func checkNeverGranted(t *testing.T, rules []rbacv1.PolicyRule) {
	t.Helper()
	for i, rule := range rules {
		if len(rule.NonResourceURLs) > 0 || (len(rule.ResourceNames) > 0 && slices.Contains(rule.Verbs, "create")) {
			t.Errorf("rule %d: %+v: non-resource URLs or create by name", i, rule)
		}
		for _, v := range rule.Verbs {
			if v == rbacv1.VerbAll || v == "escalate" || v == "bind" || v == "impersonate" {
				t.Errorf("rule %d grants %q", i, v)
			}
		}
		for _, g := range rule.APIGroups {
			if g == rbacv1.APIGroupAll || g == rbacv1.GroupName || g == "authentication.k8s.io" || g == "certificates.k8s.io" {
				t.Errorf("rule %d grants access to the API group %q", i, g)
			}
		}
		for _, res := range rule.Resources {
			if res == rbacv1.ResourceAll || strings.HasSuffix(res, "/*") ||
				strings.HasPrefix(res, "serviceaccounts") || res == "pods/exec" || res == "pods/attach" ||
				res == "pods/portforward" || res == "nodes" || res == "namespaces" {
				t.Errorf("rule %d grants access to %q", i, res)
			}
		}
	}
}
