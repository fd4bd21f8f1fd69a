// Package jobstest makes builds, Jobs and pods for the tests of the jobs'
// planners, without a cluster.
package jobstest

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
)

// T0 is the reference time of the tests.
var T0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// Spec describes a build.
type Spec struct {
	// N numbers the build: its commit, and its creation at T0+N minutes.
	N      int
	Repo   string // default acme/app
	Branch string // default main
	PR     int
	Init   model.InitStatus // default succeeded
	// Replicas, Ready are spec.replicas and available replicas.
	Replicas, Ready int32
	// LastScaled defaults to the creation time.
	LastScaled time.Time
	Deleting   bool
	// Annotations are added.
	Annotations map[string]string
}

// Build returns the build of s, as read from its Deployment.
func Build(s Spec) *runner.Build {
	if s.Repo == "" {
		s.Repo = "acme/app"
	}
	if s.Branch == "" {
		s.Branch = "main"
	}
	if s.Init == "" {
		s.Init = model.InitSucceeded
	}
	ref, err := model.NewRef(s.Repo, s.Branch, s.PR, fmt.Sprintf("%040x", s.N))
	if err != nil {
		panic(err)
	}
	created := T0.Add(time.Duration(s.N) * time.Minute)
	ann := map[string]string{
		model.AnnotationRepo:         ref.Repo,
		model.AnnotationTargetBranch: ref.TargetBranch,
		model.AnnotationPR:           ref.PRString(),
		model.AnnotationCommit:       ref.Commit,
		model.AnnotationInitStatus:   string(s.Init),
	}
	if !s.LastScaled.IsZero() {
		ann[model.AnnotationLastScaled] = model.FormatTime(s.LastScaled)
	}
	for k, v := range s.Annotations {
		ann[k] = v
	}
	labels := ref.Labels()
	labels[model.LabelInitStatus] = string(s.Init)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:              ref.Name() + "-web",
			Namespace:         "builds",
			UID:               types.UID("uid-" + strconv.Itoa(s.N)),
			ResourceVersion:   strconv.Itoa(100 + s.N),
			CreationTimestamp: metav1.NewTime(created),
			Labels:            labels,
			Annotations:       ann,
			Finalizers:        []string{model.Finalizer},
		},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(s.Replicas)},
		Status: appsv1.DeploymentStatus{
			Replicas:          s.Ready,
			AvailableReplicas: s.Ready,
		},
	}
	if s.Deleting {
		d.DeletionTimestamp = ptr.To(metav1.NewTime(created.Add(time.Hour)))
	}
	b, err := model.FromDeployment(d)
	if err != nil {
		panic(err)
	}
	return &runner.Build{Build: b, Deployment: d}
}

// Builds returns the builds of specs.
func Builds(specs ...Spec) []*runner.Build {
	out := make([]*runner.Build, len(specs))
	for i, s := range specs {
		out[i] = Build(s)
	}
	return out
}

// JobState is how a Job ended, if it did.
type JobState int

// The states of a Job.
const (
	Running JobState = iota
	Complete
	Failed
)

// Job returns a Job of kind of build b, created at created, in state.
func Job(b *runner.Build, kind model.JobKind, created time.Time, state JobState, reason string) batchv1.Job {
	j := batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:              b.Name + "-" + string(kind),
			Namespace:         "builds",
			UID:               types.UID(b.Name + "-" + string(kind) + "-" + created.Format("150405")),
			CreationTimestamp: metav1.NewTime(created),
			Labels:            map[string]string{model.LabelBuild: b.Name, model.LabelJobKind: string(kind)},
		},
	}
	switch state {
	case Complete:
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	case Failed:
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: "Job has reached the specified backoff limit"},
		}
	default:
		j.Status.Active = 1
	}
	return j
}

// Pod returns a pod of job, created at created, with one container
// "main" in state.
func Pod(job batchv1.Job, name string, created time.Time, phase corev1.PodPhase, state corev1.ContainerState) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			Namespace:         "builds",
			CreationTimestamp: metav1.NewTime(created),
			Labels:            job.Labels,
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
		Status: corev1.PodStatus{
			Phase:             phase,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: state}},
		},
	}
}

// N is the number of a build made by Build: its Spec's N, read back from
// its commit. Plan tests name builds by it ("launch #3").
func N(b *runner.Build) int {
	n, err := strconv.ParseInt(b.Ref.Commit, 16, 64)
	if err != nil {
		panic(fmt.Sprintf("build %s was not made by jobstest.Build: %v", b.Name, err))
	}
	return int(n)
}
