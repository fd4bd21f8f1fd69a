package webhook

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"runboat.dev/functions/internal/testutil"
)

// FuzzDelivery: whatever a delivery holds, signed or not, the handler
// answers with one of its codes, never fails or panics, and deploys only
// valid builds, once.
func FuzzDelivery(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(testutil.PayloadDir(f), "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no payloads: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		event, _, _ := strings.Cut(filepath.Base(file), ".")
		f.Add(event, body, true, "application/json")
	}
	f.Add("push", []byte("payload=%7B%7D"), true, "application/x-www-form-urlencoded")
	f.Add("push", []byte(`{"ref":"refs/heads/master"}`), false, "application/json")
	f.Fuzz(func(t *testing.T, event string, body []byte, signed bool, contentType string) {
		fx := newFixture(t, func(o *Options) {
			o.Supported = func(repo, branch string) bool { return true }
		})
		r := delivery(event, body)
		r.Header.Set("Content-Type", contentType)
		if !signed {
			r.Header.Del("X-Hub-Signature-256")
		}
		w := fx.serve(r)
		if !slices.Contains([]int{http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge}, w.Code) {
			t.Fatalf("status %d %q", w.Code, w.Body.String())
		}
		if !signed && w.Code != http.StatusUnauthorized {
			t.Fatalf("an unsigned delivery got %d", w.Code)
		}
		calls := fx.deployer.Calls()
		if len(calls) > 1 {
			t.Fatalf("one delivery made %d calls: %v", len(calls), calls)
		}
		for _, c := range calls {
			if c.Method == "Deploy" {
				if err := c.Ref.Validate(); err != nil {
					t.Fatalf("deployed an invalid build %+v: %v", c.Ref, err)
				}
				if w.Code != http.StatusCreated {
					t.Fatalf("a new build answered %d", w.Code)
				}
			}
		}
	})
}
