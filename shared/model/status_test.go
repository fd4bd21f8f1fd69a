package model

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var created = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

// deployment is a build's Deployment as the Python runboat leaves it: a
// random "b<uuid>" name and no runboat/commit label.
func deployment(mods ...func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:              "b5f0e6a8e-3c1d-4a7b-9f57-1e2d3c4b5a69-odoo",
			CreationTimestamp: metav1.NewTime(created),
			Labels:            map[string]string{LabelBuild: "b5f0e6a8e-3c1d-4a7b-9f57-1e2d3c4b5a69"},
			Annotations: map[string]string{
				AnnotationRepo:         "oca/mis-builder",
				AnnotationTargetBranch: "16.0",
				AnnotationPR:           "",
				AnnotationCommit:       sha40,
				AnnotationInitStatus:   string(InitSucceeded),
				AnnotationLastScaled:   "2024-03-02T11:12:13Z",
			},
			Finalizers: []string{Finalizer},
		},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0)},
	}
	for _, m := range mods {
		m(d)
	}
	return d
}

func withInit(s string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Annotations[AnnotationInitStatus] = s }
}

func withReplicas(spec *int32, status, available int32) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		d.Spec.Replicas = spec
		d.Status.Replicas = status
		d.Status.AvailableReplicas = available
	}
}

func deleting(d *appsv1.Deployment) {
	now := metav1.NewTime(created.Add(time.Hour))
	d.DeletionTimestamp = &now
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		want Status
	}{
		{"deleting wins over everything", deployment(deleting, withInit("started"), withReplicas(ptr.To[int32](1), 1, 1)), StatusUndeploying},
		{"deleting a failed build", deployment(deleting, withInit("failed")), StatusUndeploying},
		{"todo", deployment(withInit("todo")), StatusInitializing},
		{"init started", deployment(withInit("started")), StatusInitializing},
		{"init started with replicas", deployment(withInit("started"), withReplicas(ptr.To[int32](1), 1, 1)), StatusInitializing},
		{"failed", deployment(withInit("failed")), StatusFailed},
		{"failed with replicas", deployment(withInit("failed"), withReplicas(ptr.To[int32](1), 1, 1)), StatusFailed},
		{"stopped", deployment(withReplicas(ptr.To[int32](0), 0, 0)), StatusStopped},
		{"stopped, replicas unset", deployment(withReplicas(nil, 0, 0)), StatusStopped},
		{"stopping", deployment(withReplicas(ptr.To[int32](0), 1, 1)), StatusStopping},
		{"stopping, replicas unset", deployment(withReplicas(nil, 1, 0)), StatusStopping},
		{"starting, nothing yet", deployment(withReplicas(ptr.To[int32](1), 0, 0)), StatusStarting},
		{"starting, pod not available", deployment(withReplicas(ptr.To[int32](1), 1, 0)), StatusStarting},
		{"started", deployment(withReplicas(ptr.To[int32](1), 1, 1)), StatusStarted},
		{"starting, 1 of 2 available", deployment(withReplicas(ptr.To[int32](2), 2, 1)), StatusStarting},
		{"started, 2 of 2", deployment(withReplicas(ptr.To[int32](2), 2, 2)), StatusStarted},
		{"unknown init-status", deployment(withInit("paused")), StatusInitializing},
		{"empty init-status", deployment(withInit("")), StatusInitializing},
		{"missing init-status", deployment(func(d *appsv1.Deployment) { delete(d.Annotations, AnnotationInitStatus) }), StatusInitializing},
		{"no annotations at all", deployment(func(d *appsv1.Deployment) { d.Annotations = nil }), StatusInitializing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StatusOf(tc.d); got != tc.want {
				t.Errorf("StatusOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStatusValues(t *testing.T) {
	// The values are the Python runboat's; its API and UI show them.
	for s, want := range map[Status]string{
		StatusUndeploying:  "undeploying",
		StatusInitializing: "initializing",
		StatusFailed:       "failed",
		StatusStopped:      "stopped",
		StatusStopping:     "stopping",
		StatusStarting:     "starting",
		StatusStarted:      "started",
	} {
		if string(s) != want {
			t.Errorf("status %q, want %q", s, want)
		}
	}
}

func TestFromDeploymentPythonBuild(t *testing.T) {
	d := deployment(withReplicas(ptr.To[int32](1), 1, 1))
	b, err := FromDeployment(d)
	if err != nil {
		t.Fatalf("FromDeployment: %v", err)
	}
	want := Build{
		Name:            "b5f0e6a8e-3c1d-4a7b-9f57-1e2d3c4b5a69",
		DeploymentName:  "b5f0e6a8e-3c1d-4a7b-9f57-1e2d3c4b5a69-odoo",
		Ref:             Ref{Repo: "oca/mis-builder", TargetBranch: "16.0", PR: 0, Commit: sha40},
		InitStatus:      InitSucceeded,
		Status:          StatusStarted,
		DesiredReplicas: 1,
		LastScaled:      time.Date(2024, 3, 2, 11, 12, 13, 0, time.UTC),
		Created:         created,
	}
	if !b.LastScaled.Equal(want.LastScaled) || !b.Created.Equal(want.Created) {
		t.Errorf("times = %v, %v; want %v, %v", b.LastScaled, b.Created, want.LastScaled, want.Created)
	}
	b.LastScaled, b.Created, want.LastScaled, want.Created = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if b != want {
		t.Errorf("FromDeployment =\n%+v\nwant\n%+v", b, want)
	}
}

func TestFromDeploymentFields(t *testing.T) {
	for _, tc := range []struct {
		name  string
		d     *appsv1.Deployment
		check func(t *testing.T, b Build)
	}{
		{
			name: "pull request",
			d:    deployment(func(d *appsv1.Deployment) { d.Annotations[AnnotationPR] = "1234" }),
			check: func(t *testing.T, b Build) {
				if b.Ref.PR != 1234 {
					t.Errorf("PR = %d, want 1234", b.Ref.PR)
				}
			},
		},
		{
			name: "pr annotation missing is a branch build",
			d:    deployment(func(d *appsv1.Deployment) { delete(d.Annotations, AnnotationPR) }),
			check: func(t *testing.T, b Build) {
				if b.Ref.PR != 0 {
					t.Errorf("PR = %d, want 0", b.Ref.PR)
				}
			},
		},
		{
			name: "last-scaled missing falls back to creation",
			d:    deployment(func(d *appsv1.Deployment) { delete(d.Annotations, AnnotationLastScaled) }),
			check: func(t *testing.T, b Build) {
				if !b.LastScaled.Equal(created) {
					t.Errorf("LastScaled = %v, want the creation time %v", b.LastScaled, created)
				}
			},
		},
		{
			name: "last-scaled empty falls back to creation",
			d:    deployment(func(d *appsv1.Deployment) { d.Annotations[AnnotationLastScaled] = "" }),
			check: func(t *testing.T, b Build) {
				if !b.LastScaled.Equal(created) {
					t.Errorf("LastScaled = %v, want the creation time %v", b.LastScaled, created)
				}
			},
		},
		{
			name: "last-scaled with offset and fraction",
			d:    deployment(func(d *appsv1.Deployment) { d.Annotations[AnnotationLastScaled] = "2024-03-02T13:12:13.5+02:00" }),
			check: func(t *testing.T, b Build) {
				want := time.Date(2024, 3, 2, 11, 12, 13, 5e8, time.UTC)
				if !b.LastScaled.Equal(want) {
					t.Errorf("LastScaled = %v, want %v", b.LastScaled, want)
				}
			},
		},
		{
			name: "replicas unset",
			d:    deployment(withReplicas(nil, 0, 0)),
			check: func(t *testing.T, b Build) {
				if b.DesiredReplicas != 0 || b.Status != StatusStopped {
					t.Errorf("DesiredReplicas, Status = %d, %q; want 0, stopped", b.DesiredReplicas, b.Status)
				}
			},
		},
		{
			name: "unknown init-status is kept and gives initializing",
			d:    deployment(withInit("paused")),
			check: func(t *testing.T, b Build) {
				if b.InitStatus != "paused" || b.Status != StatusInitializing {
					t.Errorf("InitStatus, Status = %q, %q; want paused, initializing", b.InitStatus, b.Status)
				}
			},
		},
		{
			name: "upper case annotations are normalized",
			d: deployment(func(d *appsv1.Deployment) {
				d.Annotations[AnnotationRepo] = "OCA/Mis-Builder"
				d.Annotations[AnnotationCommit] = strings.ToUpper(sha40)
			}),
			check: func(t *testing.T, b Build) {
				if b.Ref.Repo != "oca/mis-builder" || b.Ref.Commit != sha40 {
					t.Errorf("Ref = %+v, want lower case repo and commit", b.Ref)
				}
			},
		},
		{
			name: "build made by this project",
			d: deployment(func(d *appsv1.Deployment) {
				r := Ref{Repo: "oca/mis-builder", TargetBranch: "16.0", Commit: sha40}
				d.Name = r.Name() + "-odoo"
				d.Labels = map[string]string{LabelBuild: r.Name(), LabelCommit: sha40}
			}),
			check: func(t *testing.T, b Build) {
				if b.Name != b.Ref.Name() {
					t.Errorf("Name = %q, want %q", b.Name, b.Ref.Name())
				}
			},
		},
		{
			name: "deleting",
			d:    deployment(deleting),
			check: func(t *testing.T, b Build) {
				if b.Status != StatusUndeploying {
					t.Errorf("Status = %q, want undeploying", b.Status)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := FromDeployment(tc.d)
			if err != nil {
				t.Fatalf("FromDeployment: %v", err)
			}
			tc.check(t, b)
		})
	}
}

func TestFromDeploymentErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		want []string
	}{
		{
			name: "no build label",
			d:    deployment(func(d *appsv1.Deployment) { delete(d.Labels, LabelBuild) }),
			want: []string{"missing label runboat/build"},
		},
		{
			name: "nothing of a build",
			d: deployment(func(d *appsv1.Deployment) {
				d.Labels = nil
				d.Annotations = nil
			}),
			want: []string{
				"missing label runboat/build",
				"missing annotation runboat/repo",
				"missing annotation runboat/target-branch",
				"missing annotation runboat/git-commit",
				"missing annotation runboat/init-status",
			},
		},
		{
			name: "empty required annotation",
			d:    deployment(func(d *appsv1.Deployment) { d.Annotations[AnnotationCommit] = "" }),
			want: []string{"missing annotation runboat/git-commit"},
		},
		{
			name: "bad pr and last-scaled",
			d: deployment(func(d *appsv1.Deployment) {
				d.Annotations[AnnotationPR] = "abc"
				d.Annotations[AnnotationLastScaled] = "yesterday"
			}),
			want: []string{`invalid annotation runboat/pr "abc"`, `invalid annotation runboat/last-scaled "yesterday"`},
		},
		{
			name: "negative pr",
			d:    deployment(func(d *appsv1.Deployment) { d.Annotations[AnnotationPR] = "-3" }),
			want: []string{`invalid annotation runboat/pr "-3"`},
		},
		{
			name: "invalid identity",
			d:    deployment(func(d *appsv1.Deployment) { d.Annotations[AnnotationCommit] = "nothex" }),
			want: []string{"invalid build identity", `invalid commit "nothex"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromDeployment(tc.d)
			if err == nil {
				t.Fatal("FromDeployment: no error")
			}
			if !strings.Contains(err.Error(), tc.d.Name) {
				t.Errorf("error %q does not name the deployment", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestFromDeploymentNil(t *testing.T) {
	if _, err := FromDeployment(nil); err == nil {
		t.Error("FromDeployment(nil): no error")
	}
}
