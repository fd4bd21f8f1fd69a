package model

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzRef: whatever a delivery carries, a Ref that NewRef accepts has a
// name, a slug and a target key the cluster accepts, the same for any case
// of its repository and commit, and a name that changes with each part.
func FuzzRef(f *testing.F) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	f.Add("oca/mis-builder", "16.0", 12, sha)
	f.Add("Acme/App", "x\"\n  evil: true", 0, strings.ToUpper(sha))
	f.Add("a/b", "release/2.x", 1, sha+"0123456789abcdef0123456789abcdef01234567"[:24])
	f.Add("a/b", "é中文😀\u202e", 0, sha)
	f.Fuzz(func(t *testing.T, repo, branch string, pr int, commit string) {
		r, err := NewRef(repo, branch, pr, commit)
		if err != nil {
			return
		}
		for what, errs := range map[string][]string{
			"name":          validation.IsDNS1123Label(r.Name()),
			"name as label": validation.IsValidLabelValue(r.Name()),
			"slug":          validation.IsDNS1123Label(r.Slug()),
			"target key":    validation.IsValidLabelValue(r.TargetKey()),
			"commit label":  validation.IsValidLabelValue(CommitLabel(r.Commit)),
		} {
			if len(errs) > 0 {
				t.Fatalf("%+v: %s is not valid: %v", r, what, errs)
			}
		}
		again, err := NewRef(strings.ToUpper(repo), branch, pr, strings.ToUpper(commit))
		if err != nil || again.Name() != r.Name() {
			t.Fatalf("%+v: in upper case, %+v (%v)", r, again, err)
		}
		other := r
		other.TargetBranch += "x"
		if other.Name() == r.Name() {
			t.Fatalf("%+v: another branch gives the same name", r)
		}
		other = r
		other.PR++
		if other.Name() == r.Name() {
			t.Fatalf("%+v: another pull request gives the same name", r)
		}
	})
}
