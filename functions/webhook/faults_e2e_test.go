package webhook

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/rest"

	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/faults"
	"runboat.dev/shared/testenv/invariants"
	"runboat.dev/shared/testenv/manifests"
)

// deliveryFaults fault about one request in sixteen the webhook makes (a
// delivery makes about ten): every kind the injector has.
var deliveryFaults = faults.Every(0.5)

// faultedDelivery is a delivery of TestE2EDeliveriesThroughFaults and what
// it asks for.
type faultedDelivery struct {
	event string
	body  []byte
	ref   model.Ref // the build it makes, or of the pull request it closes
	close bool
}

// TestE2EDeliveriesThroughFaults sends real deliveries (pushes of new
// commits to two branches, pull requests opened, then some of them closed)
// to the webhook handler whose API server requests go through the
// fault-injecting transport: each is answered 2xx or 5xx, never anything
// else. Once the faults stop, each delivery answered 5xx is delivered
// again, as GitHub's "Redeliver" does, and answered 2xx; then every build
// asked for is there once and whole, the builds of the closed pull
// requests are being undeployed, no object is left without its build, and
// the invariant checker finds every delivery ended as it asked.
func TestE2EDeliveriesThroughFaults(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	inj, err := faults.New(uint64(time.Now().UnixNano()), deliveryFaults...)
	if err != nil {
		t.Fatal(err)
	}
	rc := rest.CopyConfig(manifests.InstallFunction(t, env))
	rc.Wrap(inj.Wrap)
	builds := testBuilds(t, env.Namespace)
	f := newFixture(t, func(o *Options) {
		o.Deployer = newDeployer(t, rc, builds)
		o.Supported = builds.Supported
	})
	checker, err := invariants.New(env.Config, env.Namespace, 1)
	if err != nil {
		t.Fatal(err)
	}

	var ds []faultedDelivery
	for i := range 24 {
		branch := []string{"master", "feature/x"}[i%2]
		sha := fmt.Sprintf("%040x", 0xfa017000+i)
		ds = append(ds, faultedDelivery{event: "push", ref: mustRef(t, branch, 0, sha),
			body: edit(t, payload(t, "push.branch"), func(m map[string]any) {
				m["ref"], m["after"] = "refs/heads/"+branch, sha
			})})
	}
	const prs = 12
	for n := 1; n <= prs; n++ {
		sha := fmt.Sprintf("%040x", 0xfa01f000+n)
		ds = append(ds, faultedDelivery{event: "pull_request", ref: mustRef(t, "master", 100+n, sha),
			body: edit(t, payload(t, "pull_request.opened"), func(m map[string]any) {
				m["number"] = 100 + n
				pr := obj(m, "pull_request")
				pr["number"] = 100 + n
				obj(pr, "head")["sha"] = sha
			})})
	}
	for n := 1; n <= prs; n += 3 {
		opened := ds[24+n-1]
		ds = append(ds, faultedDelivery{event: "pull_request", ref: opened.ref, close: true,
			body: edit(t, payload(t, "pull_request.closed"), func(m map[string]any) {
				m["number"] = 100 + n
				obj(m, "pull_request")["number"] = 100 + n
			})})
	}

	deliver := func(d faultedDelivery) bool {
		w := f.serve(delivery(d.event, d.body))
		switch {
		case w.Code >= 200 && w.Code < 300:
			checker.Accepted(d.ref, d.close)
			return true
		case w.Code >= 500:
			return false
		}
		t.Fatalf("%s of %s: %d %s, want 2xx or 5xx", d.event, d.ref.Name(), w.Code, w.Body.String())
		return false
	}
	var failed []faultedDelivery
	for _, d := range ds {
		if !deliver(d) {
			failed = append(failed, d)
		}
	}
	inj.Stop()
	byRule, requests := inj.Injected()
	t.Logf("%d of %d deliveries answered 5xx; faults injected into %d requests: %v", len(failed), len(ds), requests, byRule)
	if len(failed) == 0 {
		t.Error("no delivery failed: the faults did not reach the webhook")
	}
	for _, d := range failed {
		if !deliver(d) {
			t.Fatalf("%s of %s failed again without faults", d.event, d.ref.Name())
		}
	}
	// A pull request closed before its opening was delivered again is
	// closed again, as the reconciler would.
	for _, d := range ds {
		if d.close && !deliver(d) {
			t.Fatalf("closing %s failed without faults", d.ref.Name())
		}
	}

	closed := map[string]bool{}
	for _, d := range ds {
		if d.close {
			closed[d.ref.Name()] = true
		}
	}
	byName := map[string][]appsv1.Deployment{}
	for _, d := range (&e2eFixture{fixture: f, env: env}).builds(t) {
		byName[d.Labels[model.LabelBuild]] = append(byName[d.Labels[model.LabelBuild]], d)
	}
	for _, d := range ds {
		if d.close {
			continue
		}
		got := byName[d.ref.Name()]
		if len(got) != 1 {
			t.Errorf("build %s: %d Deployments, want 1", d.ref.Name(), len(got))
			continue
		}
		if deleting := got[0].DeletionTimestamp != nil; deleting != closed[d.ref.Name()] {
			t.Errorf("build %s: being undeployed %v, want %v", d.ref.Name(), deleting, closed[d.ref.Name()])
		}
		checkBuild(t, got[0], d.ref)
	}
	// Two samples a grace apart: an object without its build in both is
	// an orphan.
	checker.Grace = time.Millisecond
	ctx := context.Background()
	for range 2 {
		if _, err := checker.Sample(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := checker.Report(); len(r.Breaches) > 0 {
		t.Errorf("invariants broken: %s", r)
	}
	if err := checker.Delivered(ctx); err != nil {
		t.Error(err)
	}
}
