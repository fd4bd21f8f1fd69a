package render

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"runboat.dev/shared/model"
)

// checkObjects checks what runboat relies on in the rendered objects of mode,
// whatever the kubefiles did: every object in the build namespace, labelled
// with the build, with a valid name, labels and annotations; exactly one
// Deployment in deployment mode and none elsewhere; exactly one Job in the
// initialize and cleanup modes.
func checkObjects(objs []*unstructured.Unstructured, mode Mode, vars Vars) error {
	var errs []error
	deployments, jobs := 0, 0
	for _, o := range objs {
		id := fmt.Sprintf("%s %q", o.GetKind(), o.GetName())
		gk := o.GroupVersionKind().GroupKind()
		switch {
		case gk.Group == "apps" && gk.Kind == "Deployment":
			deployments++
		case gk.Group == "batch" && gk.Kind == "Job":
			jobs++
		}
		if o.GetNamespace() != vars.Namespace {
			errs = append(errs, fmt.Errorf("%s: namespace %q, want %q (cluster-scoped objects are not allowed)",
				id, o.GetNamespace(), vars.Namespace))
		}
		if got := o.GetLabels()[model.LabelBuild]; got != vars.Name {
			errs = append(errs, fmt.Errorf("%s: label %s is %q, want %q", id, model.LabelBuild, got, vars.Name))
		}
		for _, p := range nameProblems(gk.Kind, o.GetName()) {
			errs = append(errs, fmt.Errorf("%s: invalid name: %s", id, p))
		}
		fields := metav1validation.ValidateLabels(o.GetLabels(), field.NewPath("metadata", "labels"))
		fields = append(fields, apivalidation.ValidateAnnotations(o.GetAnnotations(), field.NewPath("metadata", "annotations"))...)
		tmpl, found, err := unstructured.NestedMap(o.Object, "spec", "template", "metadata")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid pod template metadata: %w", id, err))
		} else if found {
			t := &unstructured.Unstructured{Object: map[string]any{"metadata": tmpl}}
			fields = append(fields, metav1validation.ValidateLabels(t.GetLabels(), field.NewPath("spec", "template", "metadata", "labels"))...)
			fields = append(fields, apivalidation.ValidateAnnotations(t.GetAnnotations(), field.NewPath("spec", "template", "metadata", "annotations"))...)
		}
		if len(fields) > 0 {
			errs = append(errs, fmt.Errorf("%s: %w", id, fields.ToAggregate()))
		}
	}
	switch {
	case mode == ModeDeployment && deployments != 1:
		errs = append(errs, fmt.Errorf("%d Deployments, want exactly one", deployments))
	case mode != ModeDeployment && deployments != 0:
		errs = append(errs, fmt.Errorf("%d Deployments, want none: only the deployment mode holds the build's Deployment", deployments))
	}
	if mode.jobKind() != "" && jobs != 1 {
		errs = append(errs, fmt.Errorf("%d Jobs, want exactly one", jobs))
	}
	return errors.Join(errs...)
}

// nameProblems checks an object name: a DNS subdomain, and a DNS label for
// the kinds whose names end up in host names or label values.
func nameProblems(kind, name string) []string {
	switch kind {
	case "Service":
		return validation.IsDNS1035Label(name)
	case "Job", "Pod":
		return validation.IsDNS1123Label(name)
	}
	return validation.IsDNS1123Subdomain(name)
}

// kindOrder ranks the kinds that others depend on; other kinds come after
// them, and Deployments last.
var kindOrder = []string{
	"ServiceAccount",
	"Role",
	"RoleBinding",
	"NetworkPolicy",
	"ResourceQuota",
	"LimitRange",
	"Secret",
	"ConfigMap",
	"PersistentVolumeClaim",
	"Service",
}

func kindRank(kind string) int {
	if kind == "Deployment" {
		return len(kindOrder) + 1
	}
	if i := slices.Index(kindOrder, kind); i >= 0 {
		return i
	}
	return len(kindOrder)
}

// sortObjects sorts objs in the order to apply them (see Render).
func sortObjects(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return cmp.Or(
			cmp.Compare(kindRank(a.GetKind()), kindRank(b.GetKind())),
			cmp.Compare(a.GetKind(), b.GetKind()),
			cmp.Compare(a.GetAPIVersion(), b.GetAPIVersion()),
			cmp.Compare(a.GetName(), b.GetName()),
		)
	})
}
