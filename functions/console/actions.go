package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"runboat.dev/shared/model"
)

// canStart tells whether start acts on a build of this status (the Python
// runboat's rule); start does nothing otherwise.
func canStart(s model.Status) bool {
	return s == model.StatusStopped || s == model.StatusStopping
}

// canStop tells whether stop acts on a build of this status. A starting
// build can be stopped too (one whose pods never become ready would
// otherwise stay starting until the stopper picks it).
func canStop(s model.Status) bool {
	return s == model.StatusStarted || s == model.StatusStarting
}

// scaling is starting or stopping a build.
type scaling struct {
	verb, done string // "start", "started"
	can        func(model.Status) bool
	do         func(Operations, context.Context, string) error
}

var (
	starting = scaling{verb: "start", done: "started", can: canStart, do: Operations.Start}
	stopping = scaling{verb: "stop", done: "stopped", can: canStop, do: Operations.Stop}
)

// scale starts or stops a build when its status allows it, and does
// nothing (saying so in the log) otherwise.
func (h *Handler) scale(ctx context.Context, name string, s scaling) error {
	b, err := h.getBuild(ctx, name)
	if err != nil {
		return err
	}
	if !s.can(b.Status) {
		logFrom(ctx).Info().Str("build", name).Str("status", string(b.Status)).Msg(s.verb + " ignored")
		return nil
	}
	if err := s.do(h.opts.Ops, ctx, name); err != nil {
		return fmt.Errorf("failed to %s build %s: %w", s.verb, name, err)
	}
	logFrom(ctx).Info().Str("build", name).Msg("build " + s.done)
	return nil
}

// apiScale answers POST /api/v1/builds/{name}/start or stop.
func (h *Handler) apiScale(s scaling) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h.scale(r.Context(), r.PathValue("name"), s); err != nil {
			fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, nil)
	}
}

// Errors of claimReset.
var (
	errUndeploying = errors.New("build is being undeployed")
	errTooSoon     = errors.New("build reset too recently")
)

// maxResetAttempts bounds the re-reads of a Deployment changed between the
// read and the write of its reset time.
const maxResetAttempts = 5

// claimReset records that a build is being reset, unless it was less than
// the reset interval ago: errTooSoon then, with the time left. The record
// is an annotation written with the resourceVersion read, so that of
// concurrent resets exactly one wins; a conflict means re-read and
// re-decide.
func (h *Handler) claimReset(ctx context.Context, name string) (time.Duration, error) {
	deps := h.opts.Client.AppsV1().Deployments(h.opts.Namespace)
	for range maxResetAttempts {
		d, err := h.getDeployment(ctx, name)
		if err != nil {
			return 0, err
		}
		if d.DeletionTimestamp != nil {
			return 0, errUndeploying
		}
		now := h.opts.Clock.Now()
		if last, err := model.ParseTime(d.Annotations[model.AnnotationLastReset]); err == nil {
			if next := last.Add(h.opts.ResetInterval); now.Before(next) {
				return next.Sub(now), errTooSoon
			}
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": d.ResourceVersion,
			"annotations":     map[string]string{model.AnnotationLastReset: model.FormatTime(now)},
		}})
		if err != nil {
			return 0, fmt.Errorf("failed to make the reset patch: %w", err)
		}
		_, err = deps.Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: model.FieldManager})
		switch {
		case apierrors.IsConflict(err):
			continue
		case apierrors.IsNotFound(err):
			return 0, errNoBuild
		case err != nil:
			return 0, fmt.Errorf("failed to record the reset of build %s: %w", name, err)
		}
		return 0, nil
	}
	return 0, fmt.Errorf("failed to record the reset of build %s: the Deployment changed %d times in a row", name, maxResetAttempts)
}

func (h *Handler) apiReset(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("name")
	wait, err := h.claimReset(ctx, name)
	switch {
	case errors.Is(err, errTooSoon):
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("build was reset less than %s ago: try again in %d s", h.opts.ResetInterval, secs))
		return
	case errors.Is(err, errUndeploying):
		writeError(w, http.StatusConflict, "build is being undeployed")
		return
	case err != nil:
		fail(w, r, err)
		return
	}
	if err := h.opts.Ops.Reset(ctx, name); err != nil {
		fail(w, r, fmt.Errorf("failed to reset build %s: %w", name, err))
		return
	}
	logFrom(ctx).Info().Str("build", name).Msg("build reset")
	writeJSON(w, http.StatusOK, nil)
}

func (h *Handler) apiUndeploy(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("name")
	b, err := h.getBuild(ctx, name)
	if err != nil {
		fail(w, r, err)
		return
	}
	if b.Status != model.StatusUndeploying {
		if err := h.opts.Ops.Undeploy(ctx, name); err != nil {
			fail(w, r, fmt.Errorf("failed to undeploy build %s: %w", name, err))
			return
		}
		logFrom(ctx).Info().Str("build", name).Msg("build undeployed")
	}
	writeJSON(w, http.StatusOK, nil)
}

// apiUndeployBuilds undeploys the builds matching a filter and answers null,
// as the Python runboat. Unlike it, it refuses an empty filter: undeploying
// every build takes a deliberate filter per repository.
func (h *Handler) apiUndeployBuilds(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, err := parseFilter(r.URL.Query(), false)
	if err != nil {
		fail(w, r, err)
		return
	}
	if f.empty() {
		writeError(w, http.StatusBadRequest, "give at least one of repo, target_branch, branch, pr")
		return
	}
	bs, err := h.searchBuilds(ctx, f)
	if err != nil {
		fail(w, r, err)
		return
	}
	n := 0
	var errs []error
	for _, b := range bs {
		if b.Status == model.StatusUndeploying {
			continue
		}
		err := h.opts.Ops.Undeploy(ctx, b.Name)
		switch {
		case errIsNotFound(err):
			continue // gone meanwhile
		case err != nil:
			errs = append(errs, fmt.Errorf("failed to undeploy build %s: %w", b.Name, err))
			continue
		}
		n++
	}
	logFrom(ctx).Info().Int("undeployed", n).Int("failed", len(errs)).Msg("builds undeployed")
	if err := errors.Join(errs...); err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nil)
}
