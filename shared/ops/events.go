package ops

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/lease"
	"runboat.dev/shared/logging"
	"runboat.dev/shared/text"
)

// Event types.
const (
	Normal  = corev1.EventTypeNormal
	Warning = corev1.EventTypeWarning
)

// maxNote is the API server's limit on an Event's note.
const maxNote = 1024

// maxInstance is the API server's limit on an Event's reportingInstance.
const maxInstance = 128

// Recorder records Kubernetes Events (events.k8s.io/v1) about builds'
// Deployments, so that `kubectl describe deployment` tells a build's story.
// Each Event is written at once: the jobs are short-lived and must not lose
// the last ones when they exit. An Event that cannot be written is logged as
// a warning, with the API server's answer, in the log carried by the
// context: it never fails the work it reports on.
type Recorder struct {
	client     kube.Interface
	controller string
	instance   string
	clock      clock.Clock
}

// NewRecorder returns a Recorder. component names the writer (its Events'
// reportingController is runboat.dev/<component>), instance the process
// (their reportingInstance, which events.k8s.io/v1 requires): empty means
// lease.Identity(), which names the host and the process.
func NewRecorder(client kube.Interface, component, instance string, clk clock.Clock) *Recorder {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if instance == "" {
		instance = lease.Identity()
	}
	if len(instance) > maxInstance {
		instance = instance[:maxInstance]
	}
	return &Recorder{client: client, controller: "runboat.dev/" + component, instance: instance, clock: clk}
}

// Event records an Event about d: typ is Normal or Warning, reason a
// CamelCase word (Initialized, Stopped...), action what was done (Stop,
// Undeploy...), note a sentence for people. A nil Recorder records nothing.
func (r *Recorder) Event(ctx context.Context, d *appsv1.Deployment, typ, reason, action, note string) {
	if r == nil || d == nil {
		return
	}
	now := r.clock.Now()
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", d.Name, now.UnixNano()),
			Namespace: d.Namespace,
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding: corev1.ObjectReference{
			APIVersion:      "apps/v1",
			Kind:            "Deployment",
			Namespace:       d.Namespace,
			Name:            d.Name,
			UID:             d.UID,
			ResourceVersion: d.ResourceVersion,
		},
		Note: text.Truncate(note, maxNote, text.Bytes),
		Type: typ,
	}
	if _, err := r.client.EventsV1().Events(d.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		logging.From(ctx).Warn().Err(err).Str("reason", reason).Str("controller", r.controller).Str("deployment", d.Name).
			Msg("event not recorded")
	}
}
