package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Events lists the events.k8s.io/v1 Events of the test's namespace.
func (e *Env) Events(t testing.TB) []eventsv1.Event {
	t.Helper()
	list, err := e.Client.EventsV1().Events(e.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("e2e: failed to list the Events: %v", err)
	}
	return list.Items
}

// WaitForEvent waits, for at most timeout, until the API server holds an
// Event about the Deployment d with this reason, written by controller
// (its reportingController), and returns it. It fails the test, listing the
// Events there are, when none comes, and when the Event found does not
// name d exactly (kind, API version, namespace, name, UID) or has no
// reporting instance.
func (e *Env) WaitForEvent(t testing.TB, d *appsv1.Deployment, controller, reason string, timeout time.Duration) eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	var last []eventsv1.Event
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := e.Client.EventsV1().Events(e.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		last = list.Items
		for i, ev := range list.Items {
			if ev.Regarding.Name == d.Name && ev.ReportingController == controller && ev.Reason == reason {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("e2e: no Event %s by %s about %s: %v; the Events are:\n%s", reason, controller, d.Name, err, describe(last))
	}
	r := found.Regarding
	if r.Kind != "Deployment" || r.APIVersion != "apps/v1" || r.Namespace != d.Namespace || r.UID != d.UID {
		t.Errorf("e2e: Event %s regards %s %s %s/%s (uid %s), want Deployment apps/v1 %s/%s (uid %s)",
			found.Name, r.Kind, r.APIVersion, r.Namespace, r.Name, r.UID, d.Namespace, d.Name, d.UID)
	}
	if found.ReportingInstance == "" {
		t.Errorf("e2e: Event %s has no reportingInstance", found.Name)
	}
	return *found
}

// describe lists Events one a line: reason, reporting controller and
// instance, regarded object, note.
func describe(evs []eventsv1.Event) string {
	if len(evs) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s by %s/%s about %s %s: %s\n", ev.Reason, ev.ReportingController, ev.ReportingInstance,
			ev.Regarding.Kind, ev.Regarding.Name, ev.Note)
	}
	return b.String()
}

// NoSecretIn fails t for each secret found in the Events of the test's
// namespace or in one of texts (what each holds, by name: a log, the
// answers). No Event at all fails it too: the check would check nothing.
func (e *Env) NoSecretIn(t testing.TB, secrets []string, texts map[string]string) {
	t.Helper()
	events := e.Events(t)
	if len(events) == 0 {
		t.Error("no Events recorded: the check of Events checks nothing")
	}
	recorded, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	texts = maps.Clone(texts)
	texts["the Events"] = string(recorded)
	for _, s := range secrets {
		for what, text := range texts {
			if strings.Contains(text, s) {
				t.Errorf("%s: holds the secret %q", what, s)
			}
		}
	}
}
