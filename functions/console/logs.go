package console

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
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

// ansiEscape matches the terminal escape sequences of a log (colours, and
// cursor moves that are dropped).
var ansiEscape = regexp.MustCompile(`\x1b\[([0-9;?]*)[ -/]*([@-~])`)

// tailLog returns the end of a log, as valid UTF-8.
func tailLog(s string) string {
	if len(s) > maxLogBytes {
		s = s[len(s)-maxLogBytes:]
		// Start at a line.
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// sgr is the text style that the colour sequences of a log set.
type sgr struct {
	bold   bool
	fg, bg int // 30-37 or 90-97, 40-47 or 100-107; 0 is the default
}

// apply changes the style by the parameters of a colour sequence (ESC [
// params m). Extended colours (38 and 48) are skipped.
func (st *sgr) apply(params string) {
	codes := strings.Split(params, ";")
	for i := 0; i < len(codes); i++ {
		n, err := strconv.Atoi(codes[i])
		if err != nil {
			n = 0 // empty is a reset
		}
		switch {
		case n == 0:
			*st = sgr{}
		case n == 1:
			st.bold = true
		case n == 22:
			st.bold = false
		case n >= 30 && n <= 37, n >= 90 && n <= 97:
			st.fg = n
		case n == 39:
			st.fg = 0
		case n >= 40 && n <= 47, n >= 100 && n <= 107:
			st.bg = n
		case n == 49:
			st.bg = 0
		case n == 38, n == 48:
			// 38;5;n or 38;2;r;g;b: skip the colour.
			if i+1 < len(codes) && codes[i+1] == "5" {
				i += 2
			} else if i+1 < len(codes) && codes[i+1] == "2" {
				i += 4
			}
		}
	}
}

// class is the HTML class of the style, "" for the default.
func (st sgr) class() string {
	var c []string
	if st.bold {
		c = append(c, "ansi-bold")
	}
	if st.fg != 0 {
		c = append(c, "ansi-fg-"+strconv.Itoa(st.fg))
	}
	if st.bg != 0 {
		c = append(c, "ansi-bg-"+strconv.Itoa(st.bg))
	}
	return strings.Join(c, " ")
}

// logHTML renders a log as HTML: the text escaped, its colours as spans
// with classes (as the Python runboat renders them), its other terminal
// escape sequences dropped.
func logHTML(s string) string {
	var b strings.Builder
	var st sgr
	text := func(t string) {
		if t == "" {
			return
		}
		if c := st.class(); c != "" {
			b.WriteString(`<span class="` + c + `">` + html.EscapeString(t) + `</span>`)
			return
		}
		b.WriteString(html.EscapeString(t))
	}
	last := 0
	for _, m := range ansiEscape.FindAllStringSubmatchIndex(s, -1) {
		text(s[last:m[0]])
		if s[m[4]:m[5]] == "m" {
			st.apply(s[m[2]:m[3]])
		}
		last = m[1]
	}
	text(s[last:])
	return b.String()
}

// logStyle is the style of the log page: the colours of the terminal.
const logStyle = `body{margin:0;background:#1e1e1e;color:#d4d4d4}` +
	`pre{margin:0;padding:1rem;white-space:pre-wrap;overflow-wrap:anywhere;font:13px/1.4 ui-monospace,monospace}` +
	`.ansi-bold{font-weight:bold}` +
	`.ansi-fg-30{color:#555}.ansi-fg-31{color:#e55}.ansi-fg-32{color:#5c5}.ansi-fg-33{color:#dd5}` +
	`.ansi-fg-34{color:#58f}.ansi-fg-35{color:#d5d}.ansi-fg-36{color:#5dd}.ansi-fg-37{color:#ddd}` +
	`.ansi-fg-90{color:#888}.ansi-fg-91{color:#f77}.ansi-fg-92{color:#7f7}.ansi-fg-93{color:#ff7}` +
	`.ansi-fg-94{color:#79f}.ansi-fg-95{color:#f7f}.ansi-fg-96{color:#7ff}.ansi-fg-97{color:#fff}` +
	`.ansi-bg-40{background:#000}.ansi-bg-41{background:#a00}.ansi-bg-42{background:#0a0}.ansi-bg-43{background:#a50}` +
	`.ansi-bg-44{background:#00a}.ansi-bg-45{background:#a0a}.ansi-bg-46{background:#0aa}.ansi-bg-47{background:#aaa}` +
	`.ansi-bg-100{background:#555}.ansi-bg-101{background:#f55}.ansi-bg-102{background:#5f5}.ansi-bg-103{background:#ff5}` +
	`.ansi-bg-104{background:#55f}.ansi-bg-105{background:#f5f}.ansi-bg-106{background:#5ff}.ansi-bg-107{background:#fff}`

// logPolicy allows the log page its own style only.
var logPolicy = func() string {
	sum := sha256.Sum256([]byte(logStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

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

// writeLog answers a log as an HTML page with its colours, as the Python
// runboat's, or 404 when it is empty.
func writeLog(w http.ResponseWriter, log string) {
	if strings.TrimSpace(log) == "" {
		writeError(w, http.StatusNotFound, "No log found.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", logPolicy)
	w.WriteHeader(http.StatusOK)
	// The client is gone if this fails.
	_, _ = io.WriteString(w, "<!doctype html>\n<meta charset=\"utf-8\">\n<title>log</title>\n<style>"+logStyle+"</style>\n<pre>\n"+logHTML(tailLog(log))+"</pre>\n")
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
