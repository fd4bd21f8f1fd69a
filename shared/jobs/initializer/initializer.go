// Package initializer is the initializer job: it reads the outcome of the
// builds' init Jobs into their Deployments, fails fast the builds whose init
// pod cannot start, and launches init Jobs for the oldest builds to
// initialize while fewer than RUNBOAT_MAX_INITIALIZING run.
package initializer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
)

// Name is the job's name.
const Name = "initializer"

// readers bounds the reads made at once.
const readers = 8

// Job is the initializer.
type Job struct {
	// Logs reads the logs of failed init pods; nil means through the API
	// server (PodLogs).
	Logs LogReader
}

var _ runner.Job = Job{}

// Name implements runner.Job.
func (Job) Name() string { return Name }

// RunOnce makes one pass of the initializer under its Lease; when another
// run holds the Lease it does nothing and returns nil. The webhook function
// calls it after creating a build, so that its init Job starts at once when
// a slot is free; the quota holds whoever runs the pass.
func RunOnce(ctx context.Context, env *runner.Env) error {
	return runner.RunOnce(ctx, env, Job{})
}

// Plan implements runner.Job: it reads the init Jobs, their pods and the init
// log ConfigMap of the builds whose init-status is started, then plans.
func (j Job) Plan(ctx context.Context, env *runner.Env, builds *runner.Builds) (runner.Plan, error) {
	in, err := Read(ctx, env, builds)
	if err != nil {
		return runner.Plan{}, err
	}
	logs := j.Logs
	if logs == nil {
		logs = PodLogs{Client: env.Client}
	}
	return Plan(in, Settings{
		Quotas:       env.Config.Quotas,
		StartTimeout: env.Config.InitStartTimeout,
		Logs:         logs,
	}, env.Clock.Now()), nil
}

// Read reads what Plan needs beyond the builds: for each build whose
// init-status is started, its init Jobs, their pods and its init log
// ConfigMap. These builds are few (about RUNBOAT_MAX_INITIALIZING): reading
// them one by one costs far less than listing the Jobs and pods of every
// build, which stay after they end.
func Read(ctx context.Context, env *runner.Env, builds *runner.Builds) (Input, error) {
	in := Input{Builds: builds.All, Init: map[string]*Init{}}
	var started []*runner.Build
	for _, b := range builds.All {
		if b.InitStatus == model.InitStarted {
			started = append(started, b)
			in.Init[b.Name] = &Init{}
		}
	}
	errs := make([]error, len(started))
	sem := make(chan struct{}, readers)
	var wg sync.WaitGroup
	for i, b := range started {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = readInit(ctx, env, b.Name, in.Init[b.Name])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Input{}, err
	}
	return in, nil
}

func readInit(ctx context.Context, env *runner.Env, name string, st *Init) error {
	sel := labels.Set{model.LabelBuild: name, model.LabelJobKind: string(model.JobInitialize)}.String()
	ns := env.Namespace()
	jobs, err := env.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("failed to list the init Jobs of build %s: %w", name, err)
	}
	st.Jobs = jobs.Items
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("failed to list the init pods of build %s: %w", name, err)
	}
	st.Pods = pods.Items
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, model.InitLogName(name), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("failed to read the init log of build %s: %w", name, err)
	case cm.Labels[model.LabelBuild] == name:
		st.Log = cm
	}
	return nil
}
