package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"runboat.dev/shared/config"
	"runboat.dev/shared/jobs/initializer"
	"runboat.dev/shared/jobs/stopper"
	"runboat.dev/shared/jobs/undeployer"
	"runboat.dev/shared/model"
	jt "runboat.dev/shared/testenv/jobstest"
)

// TestCountsAgreeWithThePlanners: on the same builds, the counts of
// /api/v1/status are those the jobs enforce. At quotas equal to the
// console's counts the planners do nothing; one less (one more for the
// initializer) and they act on exactly one build, naming the console's
// count.
func TestCountsAgreeWithThePlanners(t *testing.T) {
	bs := jt.Builds(
		jt.Spec{N: 1, Init: model.InitStarted},                                 // its init Job runs
		jt.Spec{N: 2, Init: model.InitStarted, Deleting: true},                 // undeployed, its init Job still runs
		jt.Spec{N: 3, Init: model.InitStarted, Deleting: true},                 // undeployed, its init Job killed
		jt.Spec{N: 4, Init: model.InitStarted, Deleting: true},                 // undeployed, its init Job completed
		jt.Spec{N: 5, Init: model.InitTodo},                                    // to initialize
		jt.Spec{N: 6, Replicas: 1, Ready: 1, LastScaled: jt.T0},                // started
		jt.Spec{N: 7, Replicas: 1, LastScaled: jt.T0},                          // starting
		jt.Spec{N: 8, LastScaled: jt.T0},                                       // stopped
		jt.Spec{N: 9, PR: 3, LastScaled: jt.T0},                                // stopped
		jt.Spec{N: 10, Init: model.InitFailed, Replicas: 1, LastScaled: jt.T0}, // failed
		jt.Spec{N: 11, Deleting: true},                                         // undeployed
		jt.Spec{N: 12},                                                         // stopped, the newest of main
	)
	running := jt.Job(bs[0], model.JobInitialize, jt.T0, jt.Running, "")
	stillRunning := jt.Job(bs[1], model.JobInitialize, jt.T0, jt.Running, "")
	completed := jt.Job(bs[3], model.JobInitialize, jt.T0, jt.Complete, "")
	objs := jt.Objects(bs, &running, &stillRunning, &completed)

	o := validOptions()
	o.Client = fake.NewClientset(objs...)
	o.Quotas = config.Quotas{MaxInitializing: 2, MaxStarted: 6, MaxDeployed: 10}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var c counts
	if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	want := counts{
		Deployed: 8, MaxDeployed: 10, Failed: 1, Stopped: 3, Started: 2, MaxStarted: 6,
		ToInitialize: 1, Initializing: 2, MaxInitializing: 2, Undeploying: 4,
	}
	if c != want {
		t.Errorf("status %+v, want %+v", c, want)
	}

	// planned returns the lines of the dry runs of the jobs under quotas q
	// that launch, stop and evict builds.
	planned := func(t *testing.T, q config.Quotas) (launches, stops, evictions []string) {
		grep := func(out, what string) []string {
			var lines []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, what) {
					lines = append(lines, l)
				}
			}
			return lines
		}
		cfg := jt.Config(q)
		launches = grep(jt.DryRun(t, jt.Env(t, cfg, initializer.Name, jt.T0, objs...), initializer.Job{}), "launch the init Job")
		stops = grep(jt.DryRun(t, jt.Env(t, cfg, stopper.Name, jt.T0, objs...), stopper.Job{}), "stop build")
		evictions = grep(jt.DryRun(t, jt.Env(t, cfg, undeployer.Name, jt.T0, objs...), undeployer.Job{}), "undeploy build")
		return launches, stops, evictions
	}
	at := config.Quotas{MaxInitializing: c.Initializing, MaxStarted: c.Started, MaxDeployed: c.Deployed}
	for _, tc := range []struct {
		name string
		q    func(*config.Quotas)
		// launch, stop and evict are in the one line the jobs plan of
		// each kind; when empty, they plan none.
		launch, stop, evict string
	}{
		{name: "at the console's counts: nothing launched, stopped or undeployed", q: func(*config.Quotas) {}},
		{name: "one initializing slot more: one launch", q: func(q *config.Quotas) { q.MaxInitializing++ }, launch: "(3 of 3 initializing)"},
		{name: "one started build too many: one stop", q: func(q *config.Quotas) { q.MaxStarted-- }, stop: "2 builds started, quota 1"},
		{name: "one deployed build too many: one undeployed", q: func(q *config.Quotas) { q.MaxDeployed-- }, evict: "8 builds deployed, quota 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := at
			tc.q(&q)
			launches, stops, evictions := planned(t, q)
			for _, got := range []struct {
				what  string
				lines []string
				want  string
			}{{"launched", launches, tc.launch}, {"stopped", stops, tc.stop}, {"undeployed", evictions, tc.evict}} {
				switch {
				case got.want == "" && len(got.lines) != 0:
					t.Errorf("%s %q, want nothing", got.what, got.lines)
				case got.want != "" && (len(got.lines) != 1 || !strings.Contains(got.lines[0], got.want)):
					t.Errorf("%s %q, want one build, %q", got.what, got.lines, got.want)
				}
			}
		})
	}
}
