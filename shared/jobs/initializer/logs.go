package initializer

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/logging"
)

// MaxLog is how much of the end of a failed init Job's log is kept.
const MaxLog = 64 << 10

// tailLines bounds the lines read of a log: far more than MaxLog holds in
// any real log, and a bound on what a huge log costs to read.
const tailLines = 20000

// LogReader reads the log of a container of a pod.
type LogReader interface {
	Log(ctx context.Context, namespace, pod, container string) (io.ReadCloser, error)
}

// PodLogs reads logs through the API server (pods/log).
type PodLogs struct {
	Client kube.Interface
}

// Log implements LogReader.
func (p PodLogs) Log(ctx context.Context, namespace, pod, container string) (io.ReadCloser, error) {
	rc, err := p.Client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: container,
		TailLines: ptr.To[int64](tailLines),
	}).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to read the log of %s/%s: %w", pod, container, err)
	}
	return rc, nil
}

// tail keeps the last n bytes written to it.
type tail struct {
	n   int
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
		t.cut = true
	}
	return len(p), nil
}

// bytes returns at most the last n bytes, cut after a line end when the
// start was cut.
func (t *tail) bytes() []byte {
	b := t.buf
	if len(b) > t.n {
		b = b[len(b)-t.n:]
		t.cut = true
	}
	if t.cut {
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return b
}

// CaptureLog returns the end (at most MaxLog bytes, valid UTF-8) of the log
// of the last of pods (the last attempt of a Job): of each of its
// containers that ran, init containers first, each under a header when
// there are several. What cannot be read is said in the text instead:
// the log of a pod that is gone, or that the node does not serve (as on
// a simulated node), is replaced by a line that says so (the error itself
// goes to the job's log).
func CaptureLog(ctx context.Context, logs LogReader, pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "(no log: the init pod is gone)\n"
	}
	pod := slices.MaxFunc(pods, func(a, b corev1.Pod) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	var containers []string
	ran := map[string]bool{}
	for _, cs := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			ran[cs.Name] = true
		}
	}
	for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		if ran[c.Name] {
			containers = append(containers, c.Name)
		}
	}
	if len(containers) == 0 {
		return fmt.Sprintf("(no log: no container of pod %s ran)\n", pod.Name)
	}
	t := &tail{n: MaxLog}
	for _, c := range containers {
		if len(containers) > 1 {
			fmt.Fprintf(t, "==> container %s <==\n", c)
		}
		if err := copyLog(ctx, logs, pod.Namespace, pod.Name, c, t); err != nil {
			// The error names internal addresses: it goes to the job's log,
			// not to the text kept for the build's readers.
			logging.From(ctx).Warn().Err(err).Str("pod", pod.Name).Str("container", c).Msg("init log not readable")
			fmt.Fprintf(t, "(log of pod %s container %s not available: the node did not serve it)\n", pod.Name, c)
		}
	}
	out := t.bytes()
	if len(bytes.TrimSpace(out)) == 0 {
		return fmt.Sprintf("(the log of pod %s is empty)\n", pod.Name)
	}
	return lastValid(string(out), MaxLog)
}

// lastValid returns the end of s, valid UTF-8, at most n bytes.
func lastValid(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return s
}

func copyLog(ctx context.Context, logs LogReader, ns, pod, container string, w io.Writer) error {
	rc, err := logs.Log(ctx, ns, pod, container)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to read the log: %w", err)
	}
	return nil
}
