// Package undeployer is the undeployer job: it runs the cleanup of the builds
// being undeployed and, when it succeeds, deletes their resources and lets
// their Deployment go; it undeploys the least recently used builds while too
// many are deployed; and it deletes the resources left by builds whose
// Deployment is gone.
package undeployer

import (
	"context"
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
)

// Name is the job's name.
const Name = "undeployer"

// alwaysDeleted are the types of resources runboat itself makes for every
// build (the build variables and env, the init and cleanup Jobs, the init
// log), deleted with a build whatever RUNBOAT_DEPLOYMENT_RESOURCE_TYPES
// says.
var alwaysDeleted = []string{"configmaps", "secrets", "jobs.batch"}

// Job is the undeployer.
type Job struct{}

var _ runner.Job = Job{}

// Name implements runner.Job.
func (Job) Name() string { return Name }

// Plan implements runner.Job.
func (Job) Plan(ctx context.Context, env *runner.Env, builds *runner.Builds) (runner.Plan, error) {
	in, err := Read(ctx, env, builds)
	if err != nil {
		return runner.Plan{}, err
	}
	return Plan(in, Settings{Quotas: env.Config.Quotas, Cleanup: env.Config.Cleanup, Jobs: env.Config.Jobs}, env.Clock.Now()), nil
}

// Resources are the resources deleted with a build: the types of
// RUNBOAT_DEPLOYMENT_RESOURCE_TYPES and those runboat makes for every build.
func Resources(env *runner.Env) ([]schema.GroupVersionResource, error) {
	types := slices.Concat([]string(env.Config.DeploymentResourceTypes), alwaysDeleted)
	return env.Ops.ResolveTypes(types)
}

// Read reads what Plan needs beyond the builds: the Jobs of the builds being
// undeployed and which of them no repository rule matches any more, and the
// resources labelled with a build of the types deleted with builds (but
// Deployments: a Deployment is the build itself).
func Read(ctx context.Context, env *runner.Env, builds *runner.Builds) (Input, error) {
	in := Input{Builds: builds.All, Jobs: map[string][]batchv1.Job{}, Unsupported: map[string]bool{}}
	type read struct {
		b    *runner.Build
		jobs []batchv1.Job
	}
	var undeploying []*read
	if !env.Config.NoCleanupJob {
		for _, b := range builds.All {
			if b.Status == model.StatusUndeploying && slices.Contains(b.Deployment.Finalizers, model.Finalizer) {
				undeploying = append(undeploying, &read{b: b})
				if !env.Config.Builds.Supported(b.Ref.Repo, b.Ref.TargetBranch) {
					in.Unsupported[b.Name] = true
				}
			}
		}
	}
	err := runner.ReadEach(undeploying, func(r *read) error {
		list, err := env.Client.BatchV1().Jobs(env.Namespace()).List(ctx, metav1.ListOptions{
			LabelSelector: labels.Set{model.LabelBuild: r.b.Name}.String(),
		})
		if err != nil {
			return fmt.Errorf("failed to list the Jobs of build %s: %w", r.b.Name, err)
		}
		r.jobs = list.Items
		return nil
	})
	if err != nil {
		return Input{}, err
	}
	for _, r := range undeploying {
		in.Jobs[r.b.Name] = r.jobs
	}
	objects, err := listObjects(ctx, env)
	if err != nil {
		return Input{}, err
	}
	in.Objects = objects
	return in, nil
}

// listObjects lists the metadata of the resources labelled with a build, of
// the types deleted with builds, Deployments excepted.
func listObjects(ctx context.Context, env *runner.Env) ([]Object, error) {
	resources, err := Resources(env)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, r := range resources {
		if r.GroupResource() == deploymentsResource.GroupResource() {
			continue
		}
		objs, _, err := kube.List(ctx, env.Metadata.Resource(r).Namespace(env.Namespace()).List,
			metav1.ListOptions{LabelSelector: runner.BuildSelector().String()},
			func(m *metav1.PartialObjectMetadata) (Object, bool) { return slimObject(r, m), true })
		if err != nil {
			return nil, fmt.Errorf("failed to list the %s of builds: %w", r.Resource, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// slimObject keeps of m what the search of orphans and their deletion read:
// its name, UID, build label, creation and deletion times. A namespace of
// 50,000 builds holds hundreds of thousands of such objects, whose managed
// fields, annotations and owners would take most of the job's memory.
func slimObject(r schema.GroupVersionResource, m *metav1.PartialObjectMetadata) Object {
	return Object{Resource: r, PartialObjectMetadata: metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              m.Name,
			Namespace:         m.Namespace,
			UID:               m.UID,
			Labels:            map[string]string{model.LabelBuild: m.Labels[model.LabelBuild]},
			CreationTimestamp: m.CreationTimestamp,
			DeletionTimestamp: m.DeletionTimestamp,
		},
	}}
}

func isGone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}
