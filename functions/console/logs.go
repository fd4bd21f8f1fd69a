package console

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/model"
)

// maxLogBytes is how much of the end of a log is shown.
const maxLogBytes = 64 << 10

// logTailLines is how many lines of a pod's log are read, before the cut to
// maxLogBytes.
const logTailLines = 2000

// failureReason is why the initialization of a build failed, when the
// initializer recorded it.
func failureReason(d *appsv1.Deployment) string {
	return d.Annotations[model.AnnotationInitFailure]
}

// ansiEscape matches the terminal escape sequences of a log (colors).
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// cleanLog returns the end of a log, as valid UTF-8 without terminal escape
// sequences.
func cleanLog(s string) string {
	if len(s) > maxLogBytes {
		s = s[len(s)-maxLogBytes:]
		// Start at a line.
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
	}
	return ansiEscape.ReplaceAllString(strings.ToValidUTF8(s, "\uFFFD"), "")
}

// initLog returns the init log of a build, "" when there is none. For a
// failed build it is the evidence the initializer keeps in a ConfigMap (the
// init Job and its pod may be gone); otherwise, or without evidence, the
// log of the newest init pod.
func (h *Handler) initLog(ctx context.Context, b buildInfo) (string, error) {
	if b.Status == model.StatusFailed {
		cm, err := h.opts.Client.CoreV1().ConfigMaps(h.opts.Namespace).Get(ctx, model.InitLogName(b.Name), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return "", fmt.Errorf("failed to read the init log of %s: %w", b.Name, err)
		case cm.Labels[model.LabelBuild] == b.Name && cm.Data[model.InitLogKey] != "":
			return cm.Data[model.InitLogKey], nil
		}
	}
	sel := labels.Set{model.LabelBuild: b.Name, model.LabelJobKind: string(model.JobInitialize)}.AsSelector()
	return h.podLog(ctx, sel)
}

// runLog returns the log of the running build: of its newest pod that is
// not a Job's.
func (h *Handler) runLog(ctx context.Context, b buildInfo) (string, error) {
	notJob, err := labels.NewRequirement(model.LabelJobKind, selection.DoesNotExist, nil)
	if err != nil {
		return "", fmt.Errorf("failed to make a selector: %w", err)
	}
	sel := labels.Set{model.LabelBuild: b.Name}.AsSelector().Add(*notJob)
	return h.podLog(ctx, sel)
}

// podLog returns the end of the log of the main container of the newest
// pod matching sel; "" when there is no pod or it has no log yet.
func (h *Handler) podLog(ctx context.Context, sel labels.Selector) (string, error) {
	pods := h.opts.Client.CoreV1().Pods(h.opts.Namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "", fmt.Errorf("failed to list pods: %w", err)
	}
	items := slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return len(p.Spec.Containers) == 0 })
	if len(items) == 0 {
		return "", nil
	}
	newest := slices.MaxFunc(items, func(a, b corev1.Pod) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	container := newest.Spec.Containers[0].Name
	if c := newest.Annotations["kubectl.kubernetes.io/default-container"]; c != "" {
		container = c
	}
	stream, err := pods.GetLogs(newest.Name, &corev1.PodLogOptions{
		Container: container,
		TailLines: ptr.To[int64](logTailLines),
	}).Stream(ctx)
	switch {
	case apierrors.IsNotFound(err), apierrors.IsBadRequest(err):
		return "", nil // gone, or not started yet
	case err != nil:
		return "", &unreadableLogError{fmt.Errorf("failed to read the log of pod %s: %w", newest.Name, err)}
	}
	defer stream.Close() //nolint:errcheck // read-only stream
	data, err := io.ReadAll(io.LimitReader(stream, 4*maxLogBytes))
	if err != nil {
		return "", &unreadableLogError{fmt.Errorf("failed to read the log of pod %s: %w", newest.Name, err)}
	}
	return string(data), nil
}

// unreadableLogError is a log that exists but that the API server could
// not give (its kubelet unreachable, or serving no logs): 502, not 500.
type unreadableLogError struct{ err error }

func (e *unreadableLogError) Error() string { return e.err.Error() }
func (e *unreadableLogError) Unwrap() error { return e.err }

// writeLog answers a log as an HTML page (as the Python runboat's, which
// renders its colours), or 404 when it is empty. The log is escaped; its
// terminal escape sequences are dropped.
func writeLog(w http.ResponseWriter, log string) {
	if strings.TrimSpace(log) == "" {
		writeError(w, http.StatusNotFound, "No log found.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(http.StatusOK)
	// The client is gone if this fails.
	_, _ = io.WriteString(w, "<!doctype html>\n<meta charset=\"utf-8\">\n<title>log</title>\n<pre>\n"+html.EscapeString(cleanLog(log))+"</pre>\n")
}

// apiLog answers the log that read finds of the build named in the path:
// its init log or the log of the running build.
func (h *Handler) apiLog(read func(context.Context, buildInfo) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := h.getBuild(r.Context(), r.PathValue("name"))
		if err != nil {
			fail(w, r, err)
			return
		}
		log, err := read(r.Context(), b)
		var unreadable *unreadableLogError
		if errors.As(err, &unreadable) {
			logFrom(r.Context()).Warn().Err(err).Str("build", b.Name).Msg("log unreadable")
			writeError(w, http.StatusBadGateway, "the log could not be read from the cluster")
			return
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		writeLog(w, log)
	}
}
