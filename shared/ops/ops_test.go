package ops

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/config"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const sha = "0123456789abcdef0123456789abcdef01234567"

// pythonDeployment is a build's Deployment as the Python runboat leaves it.
func pythonDeployment(init model.InitStatus, replicas, available int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:            "b5f0e6a8e-odoo",
			Namespace:       "builds",
			UID:             "uid-1",
			ResourceVersion: "42",
			Labels:          map[string]string{model.LabelBuild: "b5f0e6a8e"},
			Annotations: map[string]string{
				model.AnnotationRepo:         "oca/mis-builder",
				model.AnnotationTargetBranch: "16.0",
				model.AnnotationPR:           "",
				model.AnnotationCommit:       sha,
				model.AnnotationInitStatus:   string(init),
				model.AnnotationLastScaled:   "2024-03-02T11:12:13Z",
			},
			Finalizers: []string{"other/one", model.Finalizer},
		},
		Spec:   appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
		Status: appsv1.DeploymentStatus{Replicas: available, AvailableReplicas: available},
	}
}

func ops(t *testing.T, objs ...runtime.Object) (*Ops, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	clients := &kube.Clients{
		Typed:   cs,
		Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		Mapper:  testrestmapper.TestOnlyStaticRESTMapper(scheme.Scheme),
	}
	o, err := New(Options{
		Clients: clients,
		Builds: config.Builds{
			Namespace: "builds",
			Domain:    "runboat.test",
			// The embedded Odoo kubefiles, which have no start nor stop mode.
			Repos: config.RepoRules{config.MustRepoRule("^oca/", ".*", config.BuildSettings{Image: "odoo:16"})},
		},
		Clock:  clocktesting.NewFakeClock(now),
		Events: NewRecorder(cs, "test", "instance", clocktesting.NewFakeClock(now)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return o, cs
}

func TestPatchJSON(t *testing.T) {
	d := pythonDeployment(model.InitTodo, 0, 0)
	p := NewPatch(d).
		SetInitStatus(model.InitStarted).
		SetInitStatus(model.InitStarted).
		SetAnnotation(model.AnnotationRepo, "oca/mis-builder"). // unchanged: no op
		RemoveAnnotation(model.AnnotationPR).
		RemoveAnnotation("absent").
		Scale(1, now).
		RemoveFinalizer(model.Finalizer).
		RemoveFinalizer("absent")
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"op":"replace","path":"/metadata/resourceVersion","value":"42"},` +
		`{"op":"add","path":"/metadata/annotations/runboat~1init-status","value":"started"},` +
		`{"op":"add","path":"/metadata/labels/runboat~1init-status","value":"started"},` +
		`{"op":"add","path":"/metadata/annotations/runboat~1init-status","value":"started"},` +
		`{"op":"add","path":"/metadata/labels/runboat~1init-status","value":"started"},` +
		`{"op":"remove","path":"/metadata/annotations/runboat~1pr"},` +
		`{"op":"add","path":"/spec/replicas","value":1},` +
		`{"op":"add","path":"/metadata/annotations/runboat~1last-scaled","value":"2025-06-01T12:00:00Z"},` +
		`{"op":"test","path":"/metadata/finalizers/1","value":"runboat/cleanup"},` +
		`{"op":"remove","path":"/metadata/finalizers/1"}]`
	if string(b) != want {
		t.Errorf("patch\n%s\nwant\n%s", b, want)
	}
}

func TestPatchEmptyAndMissingMaps(t *testing.T) {
	d := pythonDeployment(model.InitTodo, 0, 0)
	d.Labels[model.LabelInitStatus] = string(model.InitTodo)
	if p := NewPatch(d).SetInitStatus(model.InitTodo).Scale(0, now); !p.Empty() {
		t.Error("a patch that changes nothing is not empty")
	}
	d.Annotations, d.Labels, d.Spec.Replicas = nil, nil, nil
	b, err := NewPatch(d).SetAnnotation("a/b", "c").SetLabel("l", "v").Scale(0, now).JSON()
	if err != nil {
		t.Fatal(err)
	}
	// The maps are made first; replicas set without last-scaled (unset
	// means 0 already).
	want := `[{"op":"replace","path":"/metadata/resourceVersion","value":"42"},` +
		`{"op":"add","path":"/metadata/annotations","value":{}},` +
		`{"op":"add","path":"/metadata/annotations/a~1b","value":"c"},` +
		`{"op":"add","path":"/metadata/labels","value":{}},` +
		`{"op":"add","path":"/metadata/labels/l","value":"v"},` +
		`{"op":"add","path":"/spec/replicas","value":0}]`
	if string(b) != want {
		t.Errorf("patch\n%s\nwant\n%s", b, want)
	}
}

func TestAdoptPatch(t *testing.T) {
	d := pythonDeployment(model.InitSucceeded, 0, 0)
	p, err := AdoptPatch(d)
	if err != nil {
		t.Fatal(err)
	}
	var ops []map[string]any
	b, _ := p.JSON()
	if err := json.Unmarshal(b, &ops); err != nil {
		t.Fatal(err)
	}
	ref, _ := model.NewRef("oca/mis-builder", "16.0", 0, sha)
	want := [][2]string{
		{"/metadata/labels/runboat~1commit", sha},
		{"/metadata/labels/runboat~1target", ref.TargetKey()},
		{"/metadata/labels/runboat~1repo-key", model.RepoKey("oca/mis-builder")},
		{"/metadata/labels/runboat~1init-status", string(model.InitSucceeded)},
	}
	if len(ops) != 1+len(want) {
		t.Fatalf("adopt patch %s", b)
	}
	for i, w := range want {
		if ops[i+1]["path"] != w[0] || ops[i+1]["value"] != w[1] {
			t.Errorf("adopt patch op %d: %v, want %s = %s", i+1, ops[i+1], w[0], w[1])
		}
	}
	for k, v := range ref.Labels() {
		d.Labels[k] = v
	}
	d.Labels[model.LabelInitStatus] = string(model.InitSucceeded)
	if p, err := AdoptPatch(d); err != nil || !p.Empty() {
		t.Errorf("adopting an adopted build: %v, %v", p, err)
	}
	// A label that differs from the annotation, the truth, is set right.
	d.Labels[model.LabelInitStatus] = string(model.InitTodo)
	p, err = AdoptPatch(d)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.JSON(); !strings.Contains(string(b), `{"op":"add","path":"/metadata/labels/runboat~1init-status","value":"succeeded"}`) {
		t.Errorf("stale init-status label: patch %s", b)
	}
}

// patched returns the JSON patches sent, by Deployment.
func patched(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetResource().Resource == "deployments" {
			out = append(out, string(p.GetPatch()))
		}
	}
	return out
}

func events(t *testing.T, cs *fake.Clientset) []eventsv1.Event {
	t.Helper()
	list, err := cs.EventsV1().Events("builds").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestStartStop(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		d         *appsv1.Deployment
		op        func(o *Ops, d *appsv1.Deployment) (bool, error)
		done      bool
		replicas  int32
		reason    string
		eventNote string
	}{
		{"start stopped", pythonDeployment(model.InitSucceeded, 0, 0), start, true, 1, "Started", "Scaled to 1: why"},
		{"start stopping", pythonDeployment(model.InitSucceeded, 0, 1), start, true, 1, "Started", "Scaled to 1: why"},
		{"start started", pythonDeployment(model.InitSucceeded, 1, 1), start, false, 1, "", ""},
		{"start initializing", pythonDeployment(model.InitStarted, 0, 0), start, false, 0, "", ""},
		{"start failed", pythonDeployment(model.InitFailed, 0, 0), start, false, 0, "", ""},
		{"stop started", pythonDeployment(model.InitSucceeded, 1, 1), stop, true, 0, "Stopped", "Scaled to 0: why"},
		{"stop starting", pythonDeployment(model.InitSucceeded, 1, 0), stop, true, 0, "Stopped", "Scaled to 0: why"},
		{"stop stopped", pythonDeployment(model.InitSucceeded, 0, 0), stop, false, 0, "", ""},
		{"stop failed", pythonDeployment(model.InitFailed, 1, 1), stop, false, 1, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, cs := ops(t, tc.d)
			done, err := tc.op(o, tc.d)
			if err != nil || done != tc.done {
				t.Fatalf("done %v, %v; want %v", done, err, tc.done)
			}
			got, err := cs.AppsV1().Deployments("builds").Get(ctx, tc.d.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *got.Spec.Replicas != tc.replicas {
				t.Errorf("replicas %d, want %d", *got.Spec.Replicas, tc.replicas)
			}
			evs := events(t, cs)
			if !tc.done {
				if n := len(patched(cs)); n != 0 || len(evs) != 0 {
					t.Errorf("%d patches, %d events for an operation not done", n, len(evs))
				}
				return
			}
			if got.Annotations[model.AnnotationLastScaled] != "2025-06-01T12:00:00Z" {
				t.Errorf("last-scaled %q", got.Annotations[model.AnnotationLastScaled])
			}
			if len(evs) != 1 || evs[0].Reason != tc.reason || evs[0].Note != tc.eventNote || evs[0].Regarding.Name != tc.d.Name ||
				evs[0].ReportingController != "runboat.dev/test" || evs[0].Type != Normal {
				t.Errorf("events %+v", evs)
			}
		})
	}
}

func start(o *Ops, d *appsv1.Deployment) (bool, error) {
	return o.Start(context.Background(), d, "why")
}
func stop(o *Ops, d *appsv1.Deployment) (bool, error) { return o.Stop(context.Background(), d, "why") }

func TestConflictThenDo(t *testing.T) {
	d := pythonDeployment(model.InitSucceeded, 0, 0)
	o, cs := ops(t, d)
	conflicts := 1
	cs.PrependReactor("patch", "deployments", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, d.Name, errors.New("changed"))
		}
		return false, nil, nil
	})
	if _, err := o.Start(context.Background(), d, "why"); !errors.Is(err, ErrConflict) {
		t.Fatalf("start on a changed build: %v, want ErrConflict", err)
	}
	conflicts = 2
	done, err := o.Do(context.Background(), "b5f0e6a8e", func(ctx context.Context, d *appsv1.Deployment) (bool, error) {
		return o.Start(ctx, d, "why")
	})
	if err != nil || !done {
		t.Fatalf("Do: %v, %v; want started after reading again", done, err)
	}
	conflicts = 10
	if _, err := o.Do(context.Background(), "b5f0e6a8e", func(ctx context.Context, d *appsv1.Deployment) (bool, error) {
		return o.Stop(ctx, d, "why")
	}); !errors.Is(err, ErrConflict) {
		t.Errorf("Do on a build that keeps changing: %v, want ErrConflict in the end", err)
	}
}

func TestGetNotFound(t *testing.T) {
	o, _ := ops(t)
	if _, err := o.Get(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get: %v, want ErrNotFound", err)
	}
}

func TestUndeploy(t *testing.T) {
	d := pythonDeployment(model.InitFailed, 0, 0)
	o, cs := ops(t, d)
	done, err := o.Undeploy(context.Background(), d, "why")
	if err != nil || !done {
		t.Fatalf("undeploy: %v, %v", done, err)
	}
	var del k8stesting.DeleteAction
	for _, a := range cs.Actions() {
		if x, ok := a.(k8stesting.DeleteAction); ok {
			del = x
		}
	}
	pre := del.GetDeleteOptions().Preconditions
	if del == nil || pre == nil || *pre.UID != "uid-1" || *pre.ResourceVersion != "42" {
		t.Errorf("delete without the preconditions of the build as read: %+v", del)
	}
	// Being deleted: nothing more.
	d.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	if done, err := o.Undeploy(context.Background(), d, "why"); err != nil || done {
		t.Errorf("undeploy an undeploying build: %v, %v", done, err)
	}
}

func TestKillJobs(t *testing.T) {
	o, cs := ops(t)
	if err := o.KillJobs(context.Background(), "b1", model.JobInitialize, model.JobCleanup); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range cs.Actions() {
		if dc, ok := a.(k8stesting.DeleteCollectionAction); ok {
			got = append(got, a.GetResource().Resource+" "+dc.GetListRestrictions().Labels.String())
		}
	}
	want := []string{
		"jobs runboat/build=b1,runboat/job-kind in (cleanup,initialize)",
		"pods runboat/build=b1,runboat/job-kind in (cleanup,initialize)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("deleted %q, want %q", got, want)
	}
}

func TestEventNoteTruncated(t *testing.T) {
	d := pythonDeployment(model.InitFailed, 0, 0)
	_, cs := ops(t, d)
	r := NewRecorder(cs, "test", strings.Repeat("i", 200), nil)
	r.Event(context.Background(), d, Warning, "InitFailed", "Initialize", strings.Repeat("é", 1000))
	evs := events(t, cs)
	if len(evs) != 1 || len(evs[0].Note) > maxNote || !strings.HasSuffix(evs[0].Note, "…") || len(evs[0].ReportingInstance) != maxInstance {
		t.Errorf("event note of %d bytes, instance of %d", len(evs[0].Note), len(evs[0].ReportingInstance))
	}
	var nilRecorder *Recorder
	nilRecorder.Event(context.Background(), d, Normal, "X", "Y", "z") // records nothing, does not panic
}
