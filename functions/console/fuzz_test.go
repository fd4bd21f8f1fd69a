package console

import (
	"errors"
	"net/url"
	"testing"

	"runboat.dev/shared/model"
)

// FuzzFilter: any query is refused with a reason or read into a filter of
// valid values, which its own query gives back.
func FuzzFilter(f *testing.F) {
	f.Add("repo=Acme/App&target_branch=16.0&branch=16.0&pr=7&status=started")
	f.Add("pr=-1&repo=a/b/c&status=nope")
	f.Add("branch=x%22%0A++evil%3A+true&pr=99999999999999999999")
	f.Add("repo=&pr=&branch=%ff")
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		flt, err := parseFilter(q, true)
		if err != nil {
			if _, ok := errors.AsType[*badRequestError](err); !ok {
				t.Fatalf("%q: error %v is not a bad request", query, err)
			}
			return
		}
		if flt.repo != "" && model.ValidateRepo(flt.repo) != nil {
			t.Fatalf("%q: accepted repo %q", query, flt.repo)
		}
		for _, b := range []string{flt.targetBranch, flt.branch} {
			if b != "" && model.ValidateBranch(b) != nil {
				t.Fatalf("%q: accepted branch %q", query, b)
			}
		}
		if flt.pr < 0 {
			t.Fatalf("%q: accepted pr %d", query, flt.pr)
		}
		again, err := parseFilter(flt.query(), true)
		if err != nil || again.targetBranch != flt.targetBranch || again.branch != flt.branch || again.pr != flt.pr {
			t.Fatalf("%q: its query %q reads as %+v (%v)", query, flt.query().Encode(), again, err)
		}
	})
}
