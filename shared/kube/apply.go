package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"runboat.dev/shared/model"
)

// Applier applies rendered objects with server-side apply. Clients.Applier
// makes one.
type Applier struct {
	dynamic dynamic.Interface
	mapper  meta.RESTMapper
}

// Resource returns the client of obj's kind in obj's namespace.
func (a *Applier) Resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve the kind %s: %w", gvk, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dynamic.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return a.dynamic.Resource(m.Resource), nil
}

// Apply applies objs: first a server-side dry run of all of them, so that an
// object the API server refuses leaves nothing half-created, then the real
// apply. Objects are applied in parallel, in two waves: everything but
// workloads first, then workloads (Deployments, Jobs...), so that the
// ConfigMaps, Secrets and claims a pod needs exist before it is created.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	if err := a.apply(ctx, objs, true); err != nil {
		return fmt.Errorf("failed the dry run: %w", err)
	}
	return a.ApplyChecked(ctx, objs)
}

// ApplyChecked applies objs that a DryRun has just accepted, in the two
// waves of Apply, without a dry run of its own.
func (a *Applier) ApplyChecked(ctx context.Context, objs []*unstructured.Unstructured) error {
	var first, second []*unstructured.Unstructured
	for _, o := range objs {
		if isWorkload(o) {
			second = append(second, o)
		} else {
			first = append(first, o)
		}
	}
	if err := a.apply(ctx, first, false); err != nil {
		return err
	}
	return a.apply(ctx, second, false)
}

// DryRun checks objs with a server-side dry run of their apply.
func (a *Applier) DryRun(ctx context.Context, objs []*unstructured.Unstructured) error {
	return a.apply(ctx, objs, true)
}

func isWorkload(o *unstructured.Unstructured) bool {
	switch o.GroupVersionKind().GroupKind().String() {
	case "Deployment.apps", "StatefulSet.apps", "DaemonSet.apps", "ReplicaSet.apps", "Job.batch", "CronJob.batch", "Pod":
		return true
	}
	return false
}

func (a *Applier) apply(ctx context.Context, objs []*unstructured.Unstructured, dryRun bool) error {
	opts := metav1.ApplyOptions{FieldManager: model.FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Go(func() {
			res, err := a.Resource(o)
			if err == nil {
				_, err = res.Apply(ctx, o.GetName(), o, opts)
			}
			if err != nil {
				errs[i] = fmt.Errorf("failed to apply %s %s: %w", o.GetKind(), o.GetName(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
