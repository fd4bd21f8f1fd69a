package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/model"
	"runboat.dev/shared/render"
)

// Render renders a kubefiles mode for the existing build b, with the
// settings of the repository rule that matches it now. The build keeps its
// name (a build made by the Python runboat has a random one). In deployment
// mode, the Deployment comes back with init-status todo and last-scaled now.
// found is false when the kubefiles lack an optional mode (start, stop).
func (o *Ops) Render(b model.Build, mode render.Mode, now time.Time) (objs []*unstructured.Unstructured, found bool, err error) {
	bs, ok := o.builds.Match(b.Ref.Repo, b.Ref.TargetBranch)
	if !ok {
		return nil, false, fmt.Errorf("failed to render %s for build %s: %w", mode, b.Name, render.ErrUnsupported)
	}
	fsys, err := render.Kubefiles(o.builds, bs)
	if err != nil {
		return nil, false, err
	}
	if mode.Optional() {
		has, err := render.HasMode(fsys, mode)
		if err != nil {
			return nil, false, fmt.Errorf("failed to read the kubefiles of build %s: %w", b.Name, err)
		}
		if !has {
			return nil, false, nil
		}
	}
	vars := render.VarsFor(o.builds, bs, b.Ref)
	vars.Name = b.Name
	vars.LastScaled = now
	objs, err = o.renders.Render(o.builds.KubefilesPath(bs), fsys, mode, vars)
	if err != nil {
		return nil, false, fmt.Errorf("failed to render build %s: %w", b.Name, err)
	}
	return objs, true, nil
}

// ApplyMode renders a mode for the build and applies it, if the kubefiles
// have the mode. It reports whether they had.
func (o *Ops) ApplyMode(ctx context.Context, b model.Build, mode render.Mode) (bool, error) {
	objs, found, err := o.Render(b, mode, o.clock.Now())
	if err != nil || !found {
		return false, err
	}
	if err := o.applier.Apply(ctx, objs); err != nil {
		return true, fmt.Errorf("failed to apply %s mode of build %s: %w", mode, b.Name, err)
	}
	return true, nil
}

// jobSelector selects the Jobs of a build of the given kinds, and their
// pods.
func jobSelector(buildName string, kinds []model.JobKind) (string, error) {
	values := make([]string, len(kinds))
	for i, k := range kinds {
		values[i] = string(k)
	}
	byBuild, err := labels.NewRequirement(model.LabelBuild, selection.Equals, []string{buildName})
	if err != nil {
		return "", fmt.Errorf("failed to select the Jobs of build %q: %w", buildName, err)
	}
	byKind, err := labels.NewRequirement(model.LabelJobKind, selection.In, values)
	if err != nil {
		return "", fmt.Errorf("failed to select the Jobs of build %q: %w", buildName, err)
	}
	return labels.NewSelector().Add(*byBuild, *byKind).String(), nil
}

// KillJobs deletes the Jobs of the given kinds of a build, and their pods at
// once (no grace period), as the Python runboat does: a killed init Job must
// not go on creating a database that a cleanup Job has just dropped.
func (o *Ops) KillJobs(ctx context.Context, buildName string, kinds ...model.JobKind) error {
	sel, err := jobSelector(buildName, kinds)
	if err != nil {
		return err
	}
	list := metav1.ListOptions{LabelSelector: sel}
	err = o.client.BatchV1().Jobs(o.builds.Namespace).DeleteCollection(ctx,
		metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}, list)
	if err != nil {
		return fmt.Errorf("failed to delete the %v Jobs of build %s: %w", kinds, buildName, err)
	}
	err = o.client.CoreV1().Pods(o.builds.Namespace).DeleteCollection(ctx,
		metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, list)
	if err != nil {
		return fmt.Errorf("failed to delete the pods of the %v Jobs of build %s: %w", kinds, buildName, err)
	}
	return nil
}

// DeleteJob deletes the Job name if it is still the one seen (uid), with its
// pods. A Job gone, or replaced by another of the same name, is left alone.
func (o *Ops) DeleteJob(ctx context.Context, name string, uid types.UID) error {
	err := o.client.BatchV1().Jobs(o.builds.Namespace).Delete(ctx, name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("failed to delete Job %s: %w", name, err)
	}
	return nil
}

// ResolveTypes resolves resource types as kubectl takes them ("deployment",
// "pvc", "ingresses.networking.k8s.io") to resources, without duplicates.
func (o *Ops) ResolveTypes(types []string) ([]schema.GroupVersionResource, error) {
	var (
		out  []schema.GroupVersionResource
		errs []error
		seen = map[schema.GroupResource]bool{}
	)
	for _, t := range types {
		gvr, err := o.mapper.ResourceFor(schema.ParseGroupResource(t).WithVersion(""))
		if err != nil {
			errs = append(errs, fmt.Errorf("failed to resolve the resource type %q: %w", t, err))
			continue
		}
		if !seen[gvr.GroupResource()] {
			seen[gvr.GroupResource()] = true
			out = append(out, gvr)
		}
	}
	return out, errors.Join(errs...)
}

// DeleteResources deletes every resource of the given types labelled with the
// build (its dependents, such as pods and ReplicaSets, go with them).
func (o *Ops) DeleteResources(ctx context.Context, buildName string, resources []schema.GroupVersionResource) error {
	list := metav1.ListOptions{LabelSelector: labels.Set{model.LabelBuild: buildName}.String()}
	opts := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
	var errs []error
	for _, r := range resources {
		err := o.dynamic.Resource(r).Namespace(o.builds.Namespace).DeleteCollection(ctx, opts, list)
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("failed to delete the %s of build %s: %w", r.Resource, buildName, err))
		}
	}
	return errors.Join(errs...)
}
