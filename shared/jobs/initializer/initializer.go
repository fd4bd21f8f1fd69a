// Package initializer is the initializer job: it reads the outcome of the
// builds' init Jobs into their Deployments, fails fast the builds whose init
// pod cannot start, and launches init Jobs for the oldest builds to
// initialize while fewer than RUNBOAT_MAX_INITIALIZING run.
package initializer

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/model"
)

// Name is the job's name.
const Name = "initializer"

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
//
// The pass reads only the builds its plan needs: those whose label
// runboat/init-status says todo or started, and those without the label
// (the Python runboat's, an earlier version's), so that its cost does not
// grow with the builds that are initialized. A label made wrong by another
// writer (the annotation is the truth) is set right by the next full pass,
// the initializer's CronJob's, which also adopts the builds without it.
func RunOnce(ctx context.Context, env *runner.Env) error {
	return runner.Run(ctx, env, Job{}, runner.Options{Only: Selectors()})
}

// Selectors select the builds the initializer's plan needs (RunOnce).
func Selectors() []labels.Selector {
	return []labels.Selector{
		withInitStatus(selection.In, string(model.InitTodo), string(model.InitStarted)),
		withInitStatus(selection.DoesNotExist),
	}
}

func withInitStatus(op selection.Operator, values ...string) labels.Selector {
	req, err := labels.NewRequirement(model.LabelInitStatus, op, values)
	if err != nil {
		panic(fmt.Sprintf("invalid init-status selector: %v", err)) // constant requirements
	}
	return runner.BuildSelector().Add(*req)
}

// Plan implements runner.Job: it reads what the plan needs (Read), then
// plans.
func (j Job) Plan(ctx context.Context, env *runner.Env, builds *runner.Builds) (runner.Plan, error) {
	logs := j.Logs
	if logs == nil {
		logs = PodLogs{Client: env.Client}
	}
	s := Settings{
		Quotas:       env.Config.Quotas,
		StartTimeout: env.Config.InitStartTimeout,
		Logs:         logs,
	}
	now := env.Clock.Now()
	in, err := Read(ctx, env, builds, s, now)
	if err != nil {
		return runner.Plan{}, err
	}
	return Plan(in, s, now), nil
}

// Read reads what Plan needs beyond the builds: for each build whose
// init-status is started, its init Jobs, their pods and its init log
// ConfigMap; then the init Jobs of the oldest builds to initialize, as many
// as the slots that are free once the outcomes are recorded; and which of
// these builds no repository rule matches any more. The builds whose
// init-status is started are few (about RUNBOAT_MAX_INITIALIZING): reading
// them one by one costs far less than listing the Jobs and pods of every
// build, which stay after they end.
func Read(ctx context.Context, env *runner.Env, builds *runner.Builds, s Settings, now time.Time) (Input, error) {
	in := Input{Builds: builds.All, Init: map[string]*Init{}, Unsupported: map[string]bool{}}
	var started []*runner.Build
	for _, b := range builds.All {
		if b.InitStatus != model.InitTodo && b.InitStatus != model.InitStarted {
			continue
		}
		if b.Status != model.StatusUndeploying && !env.Config.Builds.Supported(b.Ref.Repo, b.Ref.TargetBranch) {
			in.Unsupported[b.Name] = true
		}
		if b.InitStatus == model.InitStarted {
			started = append(started, b)
			in.Init[b.Name] = &Init{}
		}
	}
	err := runner.ReadEach(started, func(b *runner.Build) error {
		return readInit(ctx, env, b.Name, in.Init[b.Name], true)
	})
	if err != nil {
		return Input{}, err
	}
	_, slots := planOutcomes(in, s, now)
	todo := launchable(in)
	todo = todo[:min(len(todo), slots.Free())]
	for _, b := range todo {
		in.Init[b.Name] = &Init{}
	}
	err = runner.ReadEach(todo, func(b *runner.Build) error {
		return readInit(ctx, env, b.Name, in.Init[b.Name], false)
	})
	if err != nil {
		return Input{}, err
	}
	return in, nil
}

// readInit reads the init Jobs of a build into st and, when full, their
// pods and the build's init log ConfigMap.
func readInit(ctx context.Context, env *runner.Env, name string, st *Init, full bool) error {
	sel := labels.Set{model.LabelBuild: name, model.LabelJobKind: string(model.JobInitialize)}.String()
	ns := env.Namespace()
	jobs, err := env.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("failed to list the init Jobs of build %s: %w", name, err)
	}
	st.Jobs = jobs.Items
	if !full {
		return nil
	}
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
