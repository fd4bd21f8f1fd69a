package console

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"

	"runboat.dev/shared/ops"
)

// why is what the operations of the console say, in the log and in the
// build's Events, about why they act.
const why = "asked from the console"

// FromOps adapts the build operations of package ops to the console: each
// operation reads the build by name and acts on it as read, reading it
// again and deciding again when the build changed meanwhile.
func FromOps(o *ops.Ops) Operations { return opsAdapter{o: o} }

type opsAdapter struct{ o *ops.Ops }

// op is an operation of package ops.
type op func(ctx context.Context, d *appsv1.Deployment, why string) (bool, error)

func (a opsAdapter) do(ctx context.Context, name string, f op) error {
	_, err := a.o.Do(ctx, name, func(ctx context.Context, d *appsv1.Deployment) (bool, error) {
		return f(ctx, d, why)
	})
	return err
}

func (a opsAdapter) Start(ctx context.Context, name string) error { return a.do(ctx, name, a.o.Start) }

func (a opsAdapter) Stop(ctx context.Context, name string) error { return a.do(ctx, name, a.o.Stop) }

func (a opsAdapter) Reset(ctx context.Context, name string) error { return a.do(ctx, name, a.o.Reset) }

func (a opsAdapter) Undeploy(ctx context.Context, name string) error {
	return a.do(ctx, name, a.o.Undeploy)
}
