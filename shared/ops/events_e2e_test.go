package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/logging"
	"runboat.dev/shared/testenv/e2e"
)

// deployment creates a Deployment with no pods in the test's namespace.
func deployment(t *testing.T, env *e2e.Env) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": "x"}
	d, err := env.Client.AppsV1().Deployments(env.Namespace).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "b1-web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// events.k8s.io/v1 requires a reporting instance: a Recorder made without
// one names the process itself, and the API server accepts its Events.
func TestE2ERecorderWithoutInstance(t *testing.T) {
	env := e2e.New(t)
	d := deployment(t, env)
	var buf bytes.Buffer
	ctx := logging.Into(context.Background(), zerolog.New(&buf))
	NewRecorder(env.Client, "test", "", nil).Event(ctx, d, Normal, "Started", "Start", "Scaled to 1: asked")
	ev := env.WaitForEvent(t, d, "runboat.dev/test", "Started", 10*time.Second)
	if ev.Action != "Start" || ev.Type != Normal || ev.Note != "Scaled to 1: asked" || ev.Regarding.ResourceVersion != d.ResourceVersion {
		t.Errorf("Event %+v", ev)
	}
	if buf.Len() != 0 {
		t.Errorf("logged %s", buf.String())
	}
}

// An Event the API server refuses is not lost silently: a warning with the
// server's answer goes to the log of the context.
func TestE2ERefusedEventLogged(t *testing.T) {
	env := e2e.New(t)
	d := deployment(t, env)
	var buf bytes.Buffer
	ctx := logging.Into(context.Background(), zerolog.New(&buf))
	// No reason: the API server refuses the Event.
	NewRecorder(env.Client, "test", "e2e", nil).Event(ctx, d, Normal, "", "Start", "note")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line["level"] != "warn" || line["message"] != "event not recorded" || line["controller"] != "runboat.dev/test" ||
		line["deployment"] != d.Name || !strings.Contains(line["error"].(string), "reason: Required value") {
		t.Errorf("log line %v, want a warning naming the controller, the Deployment and the API server's answer", line)
	}
	if evs := env.Events(t); len(evs) != 0 {
		t.Errorf("%d Events recorded, want none", len(evs))
	}
}
