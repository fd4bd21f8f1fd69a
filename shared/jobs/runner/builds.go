package runner

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
)

// Build is a build as read, with its Deployment.
type Build struct {
	model.Build
	Deployment *appsv1.Deployment
}

// Builds are the builds of the namespace as read at one moment.
type Builds struct {
	// All are the builds, oldest first (by creation time, then name).
	All []*Build
	// ByName indexes All.
	ByName map[string]*Build
	// Unreadable counts the Deployments labelled as builds that could not be
	// read (logged, then left alone).
	Unreadable int
	// ResourceVersion is the version of the list, from which to watch.
	ResourceVersion string
}

// BuildSelector selects the Deployments, and every other resource, of
// builds: the label runboat/build exists.
func BuildSelector() labels.Selector {
	req, err := labels.NewRequirement(model.LabelBuild, selection.Exists, nil)
	if err != nil {
		panic(fmt.Sprintf("invalid build selector: %v", err)) // a constant requirement
	}
	return labels.NewSelector().Add(*req)
}

// ReadBuilds reads every build of the namespace, or with selectors only
// those that one of them selects (each read by its own List, at once; a
// build two select is read once). The ResourceVersion is then the first
// List's.
func ReadBuilds(ctx context.Context, env *Env, selectors ...labels.Selector) (*Builds, error) {
	if len(selectors) == 0 {
		selectors = []labels.Selector{BuildSelector()}
	}
	out := &Builds{ByName: map[string]*Build{}}
	lists := make([][]*Build, len(selectors))
	rvs := make([]string, len(selectors))
	var mu sync.Mutex // out.ByName and out.Unreadable
	var g errgroup.Group
	for i, sel := range selectors {
		g.Go(func() (err error) {
			lists[i], rvs[i], err = listBuilds(ctx, env, sel, out, &mu)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("failed to list the builds: %w", err)
	}
	for _, l := range lists {
		out.All = append(out.All, l...)
	}
	out.ResourceVersion = rvs[0]
	slices.SortFunc(out.All, func(a, b *Build) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// listBuilds lists the builds sel selects into out.ByName, and returns
// those it added.
func listBuilds(ctx context.Context, env *Env, sel labels.Selector, out *Builds, mu *sync.Mutex) ([]*Build, string, error) {
	log := logging.From(ctx)
	return kube.List(ctx, env.Client.AppsV1().Deployments(env.Namespace()).List,
		metav1.ListOptions{LabelSelector: sel.String()},
		func(d *appsv1.Deployment) (*Build, bool) {
			mu.Lock()
			defer mu.Unlock()
			b, err := model.FromDeployment(d)
			if err != nil {
				out.Unreadable++
				log.Warn().Err(err).Str("deployment", d.Name).Msg("not a readable build: left alone")
				return nil, false
			}
			if prev, dup := out.ByName[b.Name]; dup {
				if prev.DeploymentName == d.Name {
					return nil, false // selected by two selectors
				}
				out.Unreadable++
				log.Warn().Str("build", b.Name).Str("deployment", d.Name).Str("other", prev.DeploymentName).
					Msg("two Deployments carry the same build label: the second is left alone")
				return nil, false
			}
			nb := &Build{Build: b, Deployment: slim(d)}
			out.ByName[b.Name] = nb
			return nb, true
		})
}

// slim copies what the jobs use of a Deployment: its metadata but the
// managed fields, spec.replicas and its status. Thousands of builds are
// read at each pass; the copies let each page of the list go.
func slim(d *appsv1.Deployment) *appsv1.Deployment {
	out := &appsv1.Deployment{
		TypeMeta:   d.TypeMeta,
		ObjectMeta: *d.ObjectMeta.DeepCopy(),
		Status:     *d.Status.DeepCopy(),
	}
	out.ManagedFields = nil
	if d.Spec.Replicas != nil {
		r := *d.Spec.Replicas
		out.Spec.Replicas = &r
	}
	return out
}

// Replace puts a Deployment written by the run in place of the one read, and
// reads its build again.
func (bs *Builds) Replace(d *appsv1.Deployment) error {
	b, err := model.FromDeployment(d)
	if err != nil {
		return err
	}
	cur, ok := bs.ByName[b.Name]
	if !ok {
		return fmt.Errorf("failed to update build %s: not among the builds read", b.Name)
	}
	cur.Build, cur.Deployment = b, d
	return nil
}

// BuildWatchOptions watches the resources of builds (label runboat/build)
// from resourceVersion. The server ends the watch a little after timeout:
// the client, which stops watching at timeout, must not take the end of
// the watch for a change.
func BuildWatchOptions(resourceVersion string, timeout time.Duration) metav1.ListOptions {
	secs := int64(timeout/time.Second) + 2
	return metav1.ListOptions{
		LabelSelector:   BuildSelector().String(),
		ResourceVersion: resourceVersion,
		TimeoutSeconds:  &secs,
	}
}
