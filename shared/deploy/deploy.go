// Package deploy turns a build reference into a build on the cluster, and
// undeploys the builds of a branch or of a pull request. It is what the
// webhook does; the jobs take over from there.
package deploy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/model"
	"runboat.dev/shared/render"
)

var deploymentsResource = appsv1.SchemeGroupVersion.WithResource("deployments")

// Deployer deploys and undeploys builds in the builds namespace.
type Deployer struct {
	cfg      config.Builds
	applier  *kube.Applier
	metadata metadata.Interface
	clock    clock.Clock
}

// New returns a Deployer acting with clients.
func New(cfg config.Builds, clients *kube.Clients, clk clock.Clock) *Deployer {
	return &Deployer{cfg: cfg, applier: clients.Applier(), metadata: clients.Metadata, clock: clk}
}

// Deploy makes sure the build of ref exists: it renders the deployment mode
// of the build's kubefiles, checks every object with a server-side dry run,
// applies all but the Deployment, then creates the Deployment. The create is
// the lock: of concurrent deliveries of the same commit, one creates the
// build (created is true) and the others find it. A commit that already has
// a build, made by this program or adopted from the Python runboat, is left
// alone.
func (d *Deployer) Deploy(ctx context.Context, ref model.Ref) (name string, created bool, err error) {
	bs, ok := d.cfg.Match(ref.Repo, ref.TargetBranch)
	if !ok {
		return "", false, fmt.Errorf("failed to deploy %s: %w", ref.Repo, render.ErrUnsupported)
	}
	if existing, err := d.find(ctx, ref); err != nil {
		return "", false, err
	} else if existing != "" {
		logging.From(logging.WithBuild(ctx, ref, existing)).Info().Msg("commit already has a build")
		return existing, false, nil
	}
	fsys, err := render.Kubefiles(d.cfg, bs)
	if err != nil {
		return "", false, err
	}
	vars := render.VarsFor(d.cfg, bs, ref)
	vars.LastScaled = d.clock.Now()
	objs, err := render.Render(fsys, render.ModeDeployment, vars)
	if err != nil {
		return "", false, err
	}
	dep, rest, err := render.SplitDeployment(objs)
	if err != nil {
		return "", false, err
	}
	if err := d.applier.DryRun(ctx, objs); err != nil {
		return "", false, fmt.Errorf("failed to deploy %s: %w", vars.Name, err)
	}
	if err := d.applier.Apply(ctx, rest); err != nil {
		return "", false, fmt.Errorf("failed to deploy %s: %w", vars.Name, err)
	}
	res, err := d.applier.Resource(dep)
	if err != nil {
		return "", false, err
	}
	_, err = res.Create(ctx, dep, metav1.CreateOptions{FieldManager: model.FieldManager})
	switch {
	case apierrors.IsAlreadyExists(err):
		return vars.Name, false, nil
	case err != nil:
		return "", false, fmt.Errorf("failed to create the Deployment of %s: %w", vars.Name, err)
	}
	return vars.Name, true, nil
}

// find returns the name of a build of ref, or "" if it has none.
func (d *Deployer) find(ctx context.Context, ref model.Ref) (string, error) {
	sel := labels.Set{model.LabelCommit: model.CommitLabel(ref.Commit), model.LabelTarget: ref.TargetKey()}.AsSelector()
	found, err := d.list(ctx, sel.String(), func(m *metav1.PartialObjectMetadata) bool { return true })
	if err != nil || len(found) > 0 {
		return firstBuild(found), err
	}
	found, err = d.listUnadopted(ctx, func(a map[string]string) bool {
		return sameTarget(a, ref.Repo, ref.TargetBranch, ref.PR) && strings.EqualFold(a[model.AnnotationCommit], ref.Commit)
	})
	return firstBuild(found), err
}

func firstBuild(found []metav1.PartialObjectMetadata) string {
	if len(found) == 0 {
		return ""
	}
	return found[0].Labels[model.LabelBuild]
}

// sameTarget tells whether build annotations are those of the builds of a
// branch (pr 0) or of a pull request.
func sameTarget(a map[string]string, repo, branch string, pr int) bool {
	if !strings.EqualFold(a[model.AnnotationRepo], repo) {
		return false
	}
	if pr != 0 {
		return a[model.AnnotationPR] == strconv.Itoa(pr)
	}
	return a[model.AnnotationPR] == "" && a[model.AnnotationTargetBranch] == branch
}

// UndeployBranch undeploys the branch builds of a branch.
func (d *Deployer) UndeployBranch(ctx context.Context, repo, branch string) (int, error) {
	return d.undeploy(ctx, model.BranchKey(repo, branch), func(a map[string]string) bool {
		return sameTarget(a, repo, branch, 0)
	})
}

// UndeployPR undeploys every build of a pull request.
func (d *Deployer) UndeployPR(ctx context.Context, repo string, pr int) (int, error) {
	return d.undeploy(ctx, model.PRKey(repo, pr), func(a map[string]string) bool {
		return sameTarget(a, repo, "", pr)
	})
}

// undeploy deletes the Deployments of the builds of a target: the finalizer
// keeps each until the undeployer has run its cleanup.
func (d *Deployer) undeploy(ctx context.Context, key string, unadopted func(map[string]string) bool) (int, error) {
	found, err := d.list(ctx, labels.Set{model.LabelTarget: key}.String(), func(*metav1.PartialObjectMetadata) bool { return true })
	if err != nil {
		return 0, err
	}
	more, err := d.listUnadopted(ctx, unadopted)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range append(found, more...) {
		if m.DeletionTimestamp != nil {
			continue
		}
		uid := m.UID
		err := d.metadata.Resource(deploymentsResource).Namespace(d.cfg.Namespace).Delete(ctx, m.Name,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue // gone, or replaced by another: not ours to delete
		}
		if err != nil {
			return n, fmt.Errorf("failed to undeploy %s: %w", m.Name, err)
		}
		logging.From(ctx).Info().Str("build", m.Labels[model.LabelBuild]).Str("deployment", m.Name).Msg("undeploying build")
		n++
	}
	return n, nil
}

// listUnadopted lists the builds that lack the labels this project adds
// (made by the Python runboat and not yet adopted by a job), whose
// annotations satisfy keep.
func (d *Deployer) listUnadopted(ctx context.Context, keep func(map[string]string) bool) ([]metav1.PartialObjectMetadata, error) {
	sel := labels.NewSelector()
	for _, r := range []struct {
		key string
		op  selection.Operator
	}{{model.LabelBuild, selection.Exists}, {model.LabelTarget, selection.DoesNotExist}} {
		req, err := labels.NewRequirement(r.key, r.op, nil)
		if err != nil {
			return nil, fmt.Errorf("failed to build a selector: %w", err)
		}
		sel = sel.Add(*req)
	}
	return d.list(ctx, sel.String(), func(m *metav1.PartialObjectMetadata) bool { return keep(m.Annotations) })
}

// list lists the metadata of the build Deployments matching selector and
// keep.
func (d *Deployer) list(ctx context.Context, selector string, keep func(*metav1.PartialObjectMetadata) bool) ([]metav1.PartialObjectMetadata, error) {
	out, _, err := kube.List(ctx, d.metadata.Resource(deploymentsResource).Namespace(d.cfg.Namespace).List,
		metav1.ListOptions{LabelSelector: selector},
		func(m *metav1.PartialObjectMetadata) (metav1.PartialObjectMetadata, bool) { return *m, keep(m) })
	if err != nil {
		return nil, fmt.Errorf("failed to list builds: %w", err)
	}
	return out, nil
}
