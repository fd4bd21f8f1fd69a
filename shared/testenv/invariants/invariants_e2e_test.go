package invariants_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/model"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/invariants"
)

func newChecker(t *testing.T, e *e2e.Env) *invariants.Checker {
	t.Helper()
	c, err := invariants.New(e.Config, e.Namespace, 2)
	if err != nil {
		t.Fatal(err)
	}
	c.Grace = time.Second
	return c
}

func kinds(bs []invariants.Breach) string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Kind)
	}
	return strings.Join(out, ",")
}

// TestE2ECheckerSeesEachBreach breaks each invariant in turn on the local
// cluster and sees the checker report it, and nothing on a sound namespace.
func TestE2ECheckerSeesEachBreach(t *testing.T) {
	t.Parallel()
	e := e2e.New(t)
	ctx := context.Background()
	seed := e2e.Seed{N: 3, Image: "busybox:1.36"}
	e2e.CreateBuilds(t, e, seed)
	c := newChecker(t, e)
	ref0, err := seed.SeedRef(0)
	if err != nil {
		t.Fatal(err)
	}
	c.Accepted(ref0, false)

	sample := func() []invariants.Breach {
		t.Helper()
		bs, err := c.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}
	if bs := sample(); len(bs) != 0 {
		t.Fatalf("a sound namespace: %v", bs)
	}
	if err := c.Settled(ctx, 5*time.Second); err != nil {
		t.Fatalf("three stopped builds, a delivery that made one: %v", err)
	}

	// Three init Jobs running, quota 2.
	for i := range 3 {
		createInitJob(t, e, fmt.Sprintf("init-%d", i), fmt.Sprintf("b%d", i))
	}
	if got := kinds(sample()); got != "init-quota" {
		t.Errorf("three init Jobs running: breaches %q, want init-quota", got)
	}
	// Two for one build, the quota kept.
	for _, name := range []string{"init-1", "init-2"} {
		if err := e.Client.BatchV1().Jobs(e.Namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
			t.Fatal(err)
		}
	}
	createInitJob(t, e, "init-again", "b0")
	if got := kinds(sample()); got != "init-twice" {
		t.Errorf("two init Jobs of one build: breaches %q, want init-twice", got)
	}
	if err := e.Client.BatchV1().Jobs(e.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)},
		metav1.ListOptions{LabelSelector: model.LabelJobKind}); err != nil {
		t.Fatal(err)
	}

	// A second live build of build 0's identity.
	deps := e.Client.AppsV1().Deployments(e.Namespace)
	d, err := deps.Get(ctx, ref0.Name()+"-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	twin := d.DeepCopy()
	twin.ObjectMeta = metav1.ObjectMeta{Name: "twin", Labels: maps.Clone(d.Labels), Annotations: d.Annotations}
	twin.Labels[model.LabelBuild] = "twin"
	if _, err := deps.Create(ctx, twin, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := kinds(sample()); got != "duplicate" {
		t.Errorf("two builds of one identity: breaches %q, want duplicate", got)
	}
	if err := deps.Delete(ctx, "twin", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// A Service of a build that has no Deployment: not a breach at once
	// (the grace period), then one.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{model.LabelBuild: "gone"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if _, err := e.Client.CoreV1().Services(e.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if bs := sample(); len(bs) != 0 {
		t.Errorf("a Service outliving its build within the grace, the twin gone: %v", bs)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := kinds(sample()); got != "orphan" {
		t.Errorf("a Service outliving its build past the grace: breaches %q, want orphan", got)
	}
	if err := c.Settled(ctx, time.Second); err == nil || !strings.Contains(err.Error(), "services/orphan") {
		t.Errorf("Settled with an orphan: %v, want it named", err)
	}

	// A delivery accepted that made nothing.
	lost, err := model.NewRef("acme/app", "lost", 0, strings.Repeat("ab", 20))
	if err != nil {
		t.Fatal(err)
	}
	c.Accepted(lost, false)
	if err := e.Client.CoreV1().Services(e.Namespace).Delete(ctx, "orphan", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Settled(ctx, 2*time.Second); err == nil || !strings.Contains(err.Error(), "no build") {
		t.Errorf("Settled with a lost delivery: %v, want it named", err)
	}
	// A later undeploy of that target accounts for it.
	c.Accepted(lost, true)
	if err := c.Settled(ctx, 5*time.Second); err != nil {
		t.Errorf("the lost delivery's target undeployed since: %v", err)
	}

	r := c.Report()
	if got := kinds(r.Breaches); got != "init-quota,init-twice,duplicate,orphan,unsettled,lost-delivery" {
		t.Errorf("the report: %s", r)
	}
}

// createInitJob makes an init Job of build whose pod runs for ten minutes.
func createInitJob(t *testing.T, e *e2e.Env, name, build string) {
	t.Helper()
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{model.LabelJobKind: string(model.JobInitialize), model.LabelBuild: build}},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"runboat.dev/kwok-delay": "10m"}},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					Containers:                   []corev1.Container{{Name: "initialize", Image: "busybox:1.36"}},
				},
			},
		},
	}
	if _, err := e.Client.BatchV1().Jobs(e.Namespace).Create(context.Background(), j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
