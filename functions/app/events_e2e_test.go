package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"runboat.dev/shared/model"
)

// Every Event the function records is accepted by the API server: those of
// the initializer pass run after a delivery, and those of the console's
// start, stop and reset.
func TestE2EFunctionEvents(t *testing.T) {
	h, env, buf := newFunction(t)
	ctx := context.Background()

	deliver(t, h, "push", "push.branch.json", "delivery-1", http.StatusCreated)
	d := theBuild(t, env)
	name := d.Labels[model.LabelBuild]
	initEv := env.WaitForEvent(t, d, "runboat.dev/initializer", "Initializing", 10*time.Second)
	if initEv.Action != "Initialize" || initEv.Type != "Normal" {
		t.Errorf("Event %s: action %q type %q, want Initialize Normal", initEv.Reason, initEv.Action, initEv.Type)
	}

	// The init Job's outcome, as the initializer records it, so that the
	// console may start the build.
	patch := []byte(`{"metadata":{"annotations":{"` + model.AnnotationInitStatus + `":"succeeded"}}}`)
	if _, err := env.Client.AppsV1().Deployments(env.Namespace).Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	instances := map[string]bool{}
	for _, step := range []struct{ action, reason string }{
		{"start", "Started"},
		{"stop", "Stopped"},
		{"reset", "Reset"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/builds/"+name+"/"+step.action, nil))
		if w.Code != http.StatusOK {
			t.Fatalf("console %s: %d %s", step.action, w.Code, w.Body.String())
		}
		ev := env.WaitForEvent(t, d, "runboat.dev/console", step.reason, 10*time.Second)
		if ev.Action != strings.ToUpper(step.action[:1])+step.action[1:] || ev.Type != "Normal" {
			t.Errorf("Event %s: action %q type %q", ev.Reason, ev.Action, ev.Type)
		}
		instances[ev.ReportingInstance] = true
	}
	if len(instances) != 1 || !instances[initEv.ReportingInstance] {
		t.Errorf("the console's Events name the reporting instances %v, want the one of the function's initializer pass, %q",
			instances, initEv.ReportingInstance)
	}
	if strings.Contains(buf.String(), "event not recorded") {
		t.Error("the function logged a refused Event")
	}
}
