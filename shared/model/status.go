package model

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// Status is the status of a build. It is derived from the build's Deployment
// every time it is needed, never stored.
type Status string

// The statuses of a build; the values are the Python runboat's.
const (
	// StatusUndeploying: the Deployment is being deleted; its cleanup runs
	// before its finalizer is removed.
	StatusUndeploying Status = "undeploying"
	// StatusInitializing: the build waits for its init Job or that Job runs.
	StatusInitializing Status = "initializing"
	// StatusFailed: the init Job failed.
	StatusFailed Status = "failed"
	// StatusStopped: initialized, 0 replicas wanted and none running.
	StatusStopped Status = "stopped"
	// StatusStopping: 0 replicas wanted but some still running.
	StatusStopping Status = "stopping"
	// StatusStarting: replicas wanted but not all of them available yet.
	StatusStarting Status = "starting"
	// StatusStarted: every wanted replica is available.
	StatusStarted Status = "started"
)

// StatusOf derives the status of a build from its Deployment, which must not
// be nil, with the Python runboat's rules:
//
//   - undeploying when the deletion timestamp is set;
//   - initializing when init-status is todo or started;
//   - failed when init-status is failed;
//   - when init-status is succeeded: with 0 desired replicas (an unset
//     spec.replicas counts as 0), stopping while status.replicas is not 0,
//     else stopped; with desired replicas, started when
//     status.availableReplicas equals them, else starting.
//
// An init-status that is missing or unknown (the Python runboat raises an
// error there) gives initializing: the build is then neither started,
// stopped nor undeployed as a failure, which leaves it alone until its
// annotation is repaired or it is undeployed by hand.
func StatusOf(d *appsv1.Deployment) Status {
	if d.DeletionTimestamp != nil {
		return StatusUndeploying
	}
	switch InitStatus(d.Annotations[AnnotationInitStatus]) {
	case InitTodo, InitStarted:
		return StatusInitializing
	case InitFailed:
		return StatusFailed
	case InitSucceeded:
		desired := desiredReplicas(d)
		if desired == 0 {
			if d.Status.Replicas != 0 {
				return StatusStopping
			}
			return StatusStopped
		}
		if d.Status.AvailableReplicas == desired {
			return StatusStarted
		}
		return StatusStarting
	default:
		return StatusInitializing
	}
}

// desiredReplicas is spec.replicas, 0 when unset.
func desiredReplicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 0
	}
	return *d.Spec.Replicas
}

// Build is a build as read from its Deployment.
type Build struct {
	// Name is the build name, the value of the runboat/build label.
	Name string
	// DeploymentName is the name of the build's Deployment.
	DeploymentName string
	// Ref is what the build is of, read from the annotations.
	Ref Ref
	// InitStatus is the runboat/init-status annotation as found, which may
	// be a value this version does not know.
	InitStatus InitStatus
	// Status is derived by StatusOf.
	Status Status
	// DesiredReplicas is spec.replicas, 0 when unset.
	DesiredReplicas int32
	// LastScaled is the runboat/last-scaled annotation, or the creation
	// time when the annotation is missing or empty.
	LastScaled time.Time
	// Created is the creation time of the Deployment.
	Created time.Time
}

// FromDeployment reads a build from its Deployment. It needs the
// runboat/build label and the runboat/repo, runboat/target-branch,
// runboat/git-commit and runboat/init-status annotations; runboat/pr is
// optional (missing, empty or 0 for a branch build) and runboat/last-scaled
// falls back to the creation time. Builds made by the Python runboat (random
// names, no runboat/commit label) are read the same way. Every problem is
// reported in one error.
func FromDeployment(d *appsv1.Deployment) (Build, error) {
	if d == nil {
		return Build{}, errors.New("failed to read build: nil deployment")
	}
	var errs []error
	name := d.Labels[LabelBuild]
	if name == "" {
		errs = append(errs, fmt.Errorf("missing label %s", LabelBuild))
	}
	annotation := func(key string) string {
		v, ok := d.Annotations[key]
		if !ok || v == "" {
			errs = append(errs, fmt.Errorf("missing annotation %s", key))
		}
		return v
	}
	repo := annotation(AnnotationRepo)
	branch := annotation(AnnotationTargetBranch)
	commit := annotation(AnnotationCommit)
	initStatus := InitStatus(annotation(AnnotationInitStatus))

	pr := 0
	if s := d.Annotations[AnnotationPR]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("invalid annotation %s %q: want a pull request number or nothing", AnnotationPR, s))
		} else {
			pr = n
		}
	}

	created := d.CreationTimestamp.Time
	lastScaled := created
	if s := d.Annotations[AnnotationLastScaled]; s != "" {
		t, err := ParseTime(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid annotation %s %q: want an RFC 3339 time", AnnotationLastScaled, s))
		} else {
			lastScaled = t
		}
	}

	var ref Ref
	if repo != "" && branch != "" && commit != "" {
		var err error
		ref, err = NewRef(repo, branch, pr, commit)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid build identity: %w", err))
		}
	}
	if len(errs) > 0 {
		return Build{}, fmt.Errorf("failed to read build from deployment %q: %w", d.Name, errors.Join(errs...))
	}
	return Build{
		Name:            name,
		DeploymentName:  d.Name,
		Ref:             ref,
		InitStatus:      initStatus,
		Status:          StatusOf(d),
		DesiredReplicas: desiredReplicas(d),
		LastScaled:      lastScaled,
		Created:         created,
	}, nil
}
