// Package deploy turns a build reference into a build on the cluster, and
// undeploys the builds of a branch or of a pull request. It is what the
// webhook does; the jobs take over from there.
package deploy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
	// renders keeps each rule's kubefiles rendered (render.Cache).
	renders render.Cache
	// deploys joins the concurrent deploys of one commit in this process:
	// GitHub sends several deliveries for one push (the push, the pull
	// request's synchronize, retries), often at once.
	deploys singleflight.Group
}

// New returns a Deployer acting with clients.
func New(cfg config.Builds, clients *kube.Clients, clk clock.Clock) *Deployer {
	return &Deployer{cfg: cfg, applier: clients.Applier(), metadata: clients.Metadata, clock: clk}
}

// deployed is the outcome of a deploy, shared by the deploys it joined.
type deployed struct {
	name    string
	created bool
}

// Deploy makes sure the build of ref exists: it renders the deployment mode
// of the build's kubefiles, checks every object with a server-side dry run
// (while it looks for an existing build), applies all but the Deployment,
// then creates the Deployment. The create is
// the lock: of concurrent deliveries of the same commit, one creates the
// build (created is true) and the others find it. A commit that already has
// a build, made by this program or adopted from the Python runboat, is left
// alone. Concurrent deploys of one commit in a process make one deploy:
// the first made creates the build, the others find it (created false).
func (d *Deployer) Deploy(ctx context.Context, ref model.Ref) (name string, created bool, err error) {
	bs, ok := d.cfg.Match(ref.Repo, ref.TargetBranch)
	if !ok {
		return "", false, fmt.Errorf("failed to deploy %s: %w", ref.Repo, render.ErrUnsupported)
	}
	key := ref.TargetKey() + "/" + model.CommitLabel(ref.Commit)
	first := false
	v, err, _ := d.deploys.Do(key, func() (any, error) {
		first = true
		// Not cancelled with the request that happens to run it: the
		// requests that joined it wait for its outcome.
		name, created, err := d.deploy(context.WithoutCancel(ctx), ref, bs)
		return deployed{name, created}, err
	})
	out, _ := v.(deployed)
	return out.name, out.created && first, err
}

func (d *Deployer) deploy(ctx context.Context, ref model.Ref, bs config.BuildSettings) (name string, created bool, err error) {
	// The look for an existing build and the render and dry run of a new
	// one go at once: a new build waits for the longer of the two, not
	// for both. A commit that has its build wasted a dry run, which
	// changes nothing.
	var existing string
	var findErr error
	found := make(chan struct{})
	go func() {
		defer close(found)
		existing, findErr = d.find(ctx, ref)
	}()
	vars, objs, checkErr := d.renderChecked(ctx, ref, bs)
	<-found
	switch {
	case findErr != nil:
		return "", false, findErr
	case existing != "":
		logging.From(logging.WithBuild(ctx, ref, existing)).Info().Msg("commit already has a build")
		return existing, false, nil
	case checkErr != nil:
		return "", false, checkErr
	}
	dep, rest, err := render.SplitDeployment(objs)
	if err != nil {
		return "", false, err
	}
	if err := d.applier.ApplyChecked(ctx, rest); err != nil {
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

// renderChecked renders the deployment mode of the build of ref and checks
// every object, the Deployment included, with one server-side dry run: an
// object the API server refuses leaves nothing made.
func (d *Deployer) renderChecked(ctx context.Context, ref model.Ref, bs config.BuildSettings) (render.Vars, []*unstructured.Unstructured, error) {
	fsys, err := render.Kubefiles(d.cfg, bs)
	if err != nil {
		return render.Vars{}, nil, err
	}
	vars := render.VarsFor(d.cfg, bs, ref)
	vars.LastScaled = d.clock.Now()
	objs, err := d.renders.Render(d.cfg.KubefilesPath(bs), fsys, render.ModeDeployment, vars)
	if err != nil {
		return render.Vars{}, nil, err
	}
	if err := d.applier.DryRun(ctx, objs); err != nil {
		return render.Vars{}, nil, fmt.Errorf("failed to deploy %s: %w", vars.Name, err)
	}
	return vars, objs, nil
}

// find returns the name of a build of ref, or "" if it has none: one
// labelled with its commit and target, or one the Python runboat made and no
// job adopted yet, both looked for at once.
func (d *Deployer) find(ctx context.Context, ref model.Ref) (string, error) {
	var labelled, unadopted []metav1.PartialObjectMetadata
	var g errgroup.Group
	g.Go(func() (err error) {
		sel := labels.Set{model.LabelCommit: model.CommitLabel(ref.Commit), model.LabelTarget: ref.TargetKey()}.AsSelector()
		labelled, err = d.list(ctx, sel.String(), func(m *metav1.PartialObjectMetadata) bool { return true })
		return err
	})
	g.Go(func() (err error) {
		unadopted, err = d.listUnadopted(ctx, func(a map[string]string) bool {
			return sameTarget(a, ref.Repo, ref.TargetBranch, ref.PR) && strings.EqualFold(a[model.AnnotationCommit], ref.Commit)
		})
		return err
	})
	if err := g.Wait(); err != nil {
		return "", err
	}
	return firstBuild(append(labelled, unadopted...)), nil
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
