// Package ops holds the operations that change a build on the cluster: start,
// stop, reset and undeploy, which a person asks for (from the console) and
// the jobs use, and the writes the jobs build on: optimistic patches of a
// build's Deployment, rendering and applying a kubefiles mode for an existing
// build, killing a build's Jobs, deleting its resources, and the Kubernetes
// Events that tell a build's story.
//
// Every write of a build's Deployment is optimistic: it carries the
// resourceVersion the decision was made on, and fails with an error wrapping
// ErrConflict when the build changed since; the caller then reads the build
// again and decides again (Do does that).
package ops

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/render"
)

// ErrConflict is wrapped by the errors of writes refused because the object
// changed since it was read: read it again and decide again.
var ErrConflict = errors.New("the build changed since it was read")

// ErrNotFound is wrapped by the errors of operations on a build that does not
// exist (or no longer does).
var ErrNotFound = errors.New("build not found")

// maxAttempts bounds how many times Do reads a build and decides again after
// a conflict.
const maxAttempts = 5

// Ops performs operations on the builds of one namespace.
type Ops struct {
	client  kube.Interface
	dynamic dynamic.Interface
	mapper  meta.RESTMapper
	applier *kube.Applier
	builds  config.Builds
	clock   clock.Clock
	events  *Recorder
	// renders keeps each rule's kubefiles rendered (render.Cache).
	renders render.Cache
}

// Options are what Ops needs.
type Options struct {
	// Clients are the clients of the cluster: the typed and dynamic ones,
	// and the Mapper that resolves kinds and resource types (deployment,
	// pvc, ingresses.networking.k8s.io...).
	Clients *kube.Clients
	// Builds is the configuration the builds were made with: their
	// namespace, and the rules that give their kubefiles and variables.
	Builds config.Builds
	// Clock stamps runboat/last-scaled. Nil means the real clock.
	Clock clock.Clock
	// Events records a Kubernetes Event on a build's Deployment for each
	// transition. Nil records none.
	Events *Recorder
}

// New returns an Ops.
func New(opts Options) (*Ops, error) {
	c := opts.Clients
	if c == nil || c.Typed == nil || c.Dynamic == nil || c.Mapper == nil {
		return nil, errors.New("failed to create the build operations: missing Kubernetes client")
	}
	if opts.Builds.Namespace == "" {
		return nil, errors.New("failed to create the build operations: missing builds namespace")
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Ops{
		client:  c.Typed,
		dynamic: c.Dynamic,
		mapper:  c.Mapper,
		applier: c.Applier(),
		builds:  opts.Builds,
		clock:   clk,
		events:  opts.Events,
	}, nil
}

// Events is the Event recorder, nil when none.
func (o *Ops) Events() *Recorder { return o.events }

// Applier is the server-side applier of the operations.
func (o *Ops) Applier() *kube.Applier { return o.applier }

// Get returns the Deployment of the build named name, found by its
// runboat/build label (a build made by the Python runboat has a random
// name, and its Deployment another one).
func (o *Ops) Get(ctx context.Context, name string) (*appsv1.Deployment, error) {
	list, err := o.client.AppsV1().Deployments(o.builds.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{model.LabelBuild: name}.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read build %s: %w", name, err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("failed to read build %s: %w", name, ErrNotFound)
	}
	if len(list.Items) > 1 {
		return nil, fmt.Errorf("failed to read build %s: %d Deployments carry its label, want one", name, len(list.Items))
	}
	return &list.Items[0], nil
}

// Op is an operation on a build's Deployment, as read, such as Start. It
// reports whether it changed anything.
type Op func(ctx context.Context, d *appsv1.Deployment) (bool, error)

// Do reads the Deployment of the build named name and runs op on it. When op
// fails because the build changed meanwhile (ErrConflict), Do reads the
// build again and runs op again, so that the decision is made on what is
// there, up to a few times.
func (o *Ops) Do(ctx context.Context, name string, op Op) (bool, error) {
	var last error
	for range maxAttempts {
		d, err := o.Get(ctx, name)
		if err != nil {
			return false, err
		}
		changed, err := op(ctx, d)
		if !errors.Is(err, ErrConflict) {
			return changed, err
		}
		last = err
	}
	return false, fmt.Errorf("failed after %d attempts, the build changing each time: %w", maxAttempts, last)
}

// writeError turns the error of a write into one wrapping ErrConflict or
// ErrNotFound when it is one.
func writeError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsConflict(err):
		return fmt.Errorf("failed to %s: %w: %w", what, ErrConflict, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("failed to %s: %w: %w", what, ErrNotFound, err)
	default:
		return fmt.Errorf("failed to %s: %w", what, err)
	}
}
