package initializer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"runboat.dev/shared/model"
	jt "runboat.dev/shared/testenv/jobstest"
)

// fakeLogs serves logs by "pod/container"; a missing one is an error.
type fakeLogs map[string]string

func (f fakeLogs) Log(_ context.Context, _, pod, container string) (io.ReadCloser, error) {
	s, ok := f[pod+"/"+container]
	if !ok {
		return nil, errors.New("the server could not find the requested resource")
	}
	return io.NopCloser(strings.NewReader(s)), nil
}

func failedPod(name string, containers ...string) corev1.Pod {
	b := jt.Build(jt.Spec{N: 1, Init: model.InitStarted})
	p := jt.Pod(jt.Job(b, model.JobInitialize, jt.T0, jt.Failed, "BackoffLimitExceeded"), name, jt.T0, corev1.PodFailed, corev1.ContainerState{})
	p.Spec.Containers = nil
	p.Status.ContainerStatuses = nil
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
		})
	}
	return p
}

func TestCaptureLogKeepsTheEnd(t *testing.T) {
	var b strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&b, "line %05d: installing addon number %d\n", i, i)
	}
	log := b.String()
	got := CaptureLog(context.Background(), fakeLogs{"p/main": log}, []corev1.Pod{failedPod("p", "main")})
	if len(got) > MaxLog {
		t.Errorf("kept %d bytes, want at most %d", len(got), MaxLog)
	}
	if len(got) < MaxLog-100 {
		t.Errorf("kept %d bytes, want about %d", len(got), MaxLog)
	}
	if !strings.HasSuffix(got, "line 09999: installing addon number 9999\n") {
		t.Errorf("the end of the log is not kept: ...%q", got[len(got)-60:])
	}
	if !strings.HasPrefix(got, "line ") || !strings.HasSuffix(log, got) {
		t.Errorf("the log is not cut after a line end: %q...", got[:40])
	}
}

func TestCaptureLogOfTheLastPod(t *testing.T) {
	first, last := failedPod("first", "main"), failedPod("last", "main")
	last.CreationTimestamp = metav1.NewTime(jt.T0.Add(1))
	got := CaptureLog(context.Background(), fakeLogs{"first/main": "one\n", "last/main": "two\n"}, []corev1.Pod{last, first})
	if got != "two\n" {
		t.Errorf("log %q, want the last pod's", got)
	}
}

func TestCaptureLogContainers(t *testing.T) {
	p := failedPod("p", "a", "b")
	p.Spec.InitContainers = []corev1.Container{{Name: "setup"}, {Name: "never"}}
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: "setup", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}},
		{Name: "never", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}},
	}
	got := CaptureLog(context.Background(), fakeLogs{"p/setup": "cloned\n", "p/a": "a says\n"}, []corev1.Pod{p})
	want := "==> container setup <==\ncloned\n==> container a <==\na says\n==> container b <==\n" +
		"(log of pod p container b not available: the node did not serve it)\n"
	if got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}

func TestCaptureLogNothingToRead(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		logs fakeLogs
		pods []corev1.Pod
		want string
	}{
		{"no pod", fakeLogs{}, nil, "(no log: the init pod is gone)\n"},
		{"no container ran", fakeLogs{}, []corev1.Pod{failedPod("p")}, "(no log: no container of pod p ran)\n"},
		{"log not served", fakeLogs{}, []corev1.Pod{failedPod("p", "main")}, "(log of pod p container main not available: the node did not serve it)\n"},
		{"empty log", fakeLogs{"p/main": " \n"}, []corev1.Pod{failedPod("p", "main")}, "(the log of pod p is empty)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CaptureLog(ctx, tc.logs, tc.pods); got != tc.want {
				t.Errorf("log %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCaptureLogValidUTF8(t *testing.T) {
	log := strings.Repeat("é", MaxLog) + "\xff\xfe end"
	got := CaptureLog(context.Background(), fakeLogs{"p/main": log}, []corev1.Pod{failedPod("p", "main")})
	if !utf8.ValidString(got) || len(got) > MaxLog || !strings.HasSuffix(got, "é\uFFFD end") {
		t.Errorf("log of %d bytes, valid %v, ends %q", len(got), utf8.ValidString(got), got[len(got)-10:])
	}
}

func TestPodLogs(t *testing.T) {
	// The fake clientset serves "fake logs" for any pod.
	got := CaptureLog(context.Background(), PodLogs{Client: fake.NewClientset()}, []corev1.Pod{failedPod("p", "main")})
	if got != "fake logs" {
		t.Errorf("log %q", got)
	}
}
