package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"runboat.dev/shared/github"
	"runboat.dev/shared/model"
)

// Odd deliveries: what GitHub may send, or what someone may send instead.
// Each either gives exactly the call the plain delivery gives, or is
// refused with a short reason and changes nothing.
func TestOddDeliveries(t *testing.T) {
	push := payload(t, "push.branch")
	master := deployCall("master", 0, pushSHA)
	padded := edit(t, push, func(m map[string]any) { m["padding"] = strings.Repeat("x", MaxBodyBytes-len(push)-64) })
	for _, tc := range []struct {
		name   string
		body   []byte
		change func(r *http.Request)
		code   int
		calls  []call
	}{
		{
			// GitHub's application/x-www-form-urlencoded content type: the
			// JSON in a "payload" field, the signature over the form.
			name: "form-encoded", body: []byte("payload=" + url.QueryEscape(string(push))),
			change: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") },
			code:   http.StatusCreated, calls: []call{master},
		},
		{
			name: "form-encoded without payload", body: []byte("other=" + url.QueryEscape(string(push))),
			change: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") },
			code:   http.StatusBadRequest,
		},
		{
			name: "signature in upper-case hex", body: push,
			change: func(r *http.Request) {
				sig := r.Header.Get(github.HeaderSignature)
				r.Header.Set(github.HeaderSignature, "sha256="+strings.ToUpper(strings.TrimPrefix(sig, "sha256=")))
			},
			code: http.StatusCreated, calls: []call{master},
		},
		{
			// A valid sha1 signature alone is not enough: sha256 is required.
			name: "valid sha1 signature only", body: push,
			change: func(r *http.Request) {
				r.Header.Del(github.HeaderSignature)
				r.Header.Set("X-Hub-Signature", "sha1=0123456789abcdef0123456789abcdef01234567")
			},
			code: http.StatusUnauthorized,
		},
		{
			// Duplicate keys: the signed bytes are what they are; the last
			// value wins, as in Go's and GitHub's own parsers.
			name: "duplicate keys", body: bytes.Replace(push, []byte(`"ref":`), []byte(`"ref": "refs/heads/feature/x", "ref":`), 1),
			code: http.StatusCreated, calls: []call{master},
		},
		{
			name: "very deep JSON", body: bytes.Replace(push, []byte(`"ref":`), []byte(`"deep": `+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`, "ref":`), 1),
			code: http.StatusBadRequest,
		},
		{
			name: "a body of 5 MiB", body: padded,
			code: http.StatusCreated, calls: []call{master},
		},
		{
			name: "a push of 1,000 commits", body: edit(t, push, func(m map[string]any) {
				commits := make([]any, 1000)
				for i := range commits {
					commits[i] = map[string]any{"id": fmt.Sprintf("%040x", i), "message": "commit " + fmt.Sprint(i), "distinct": true}
				}
				m["commits"] = commits
			}),
			code: http.StatusCreated, calls: []call{master},
		},
		{
			// Unicode and control characters in every string but those
			// that make the build: nothing changes.
			name: "control characters in the other strings", body: edit(t, push, func(m map[string]any) {
				keep := map[string]bool{"ref": true, "after": true, "full_name": true}
				mangleStrings(m, keep)
			}),
			code: http.StatusCreated, calls: []call{master},
		},
		{
			// Any branch name is data: one with control or bidirectional
			// characters makes its build like any other (the renderer
			// carries it inertly; see shared/render's hostile tests).
			name: "control characters in the branch", body: edit(t, push, func(m map[string]any) { m["ref"] = "refs/heads/odd\x00\n\u202e" }),
			code: http.StatusCreated, calls: []call{deployCall("odd\x00\n\u202e", 0, pushSHA)},
		},
		{
			// Invalid UTF-8 in the JSON text: the parser makes it U+FFFD.
			name: "invalid UTF-8 in the branch", body: bytes.Replace(push, []byte(`"refs/heads/master"`), []byte("\"refs/heads/odd\xff\""), 1),
			code: http.StatusCreated, calls: []call{deployCall("odd\ufffd", 0, pushSHA)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) {
				o.Supported = func(repo, branch string) bool {
					return repo == testRepo && (branch == "master" || strings.HasPrefix(branch, "odd"))
				}
			})
			r := delivery("push", tc.body)
			if tc.change != nil {
				tc.change(r)
			}
			w := f.serve(r)
			if w.Code != tc.code {
				t.Fatalf("got %d %q, want %d", w.Code, w.Body.String(), tc.code)
			}
			if msg := strings.TrimSpace(w.Body.String()); len(msg) > 120 {
				t.Errorf("reason %q: want a short text", msg)
			}
			if got := f.deployer.Calls(); fmt.Sprint(got) != fmt.Sprint(tc.calls) {
				t.Errorf("deployer calls %v, want %v", got, tc.calls)
			}
		})
	}
}

// mangleStrings puts unicode and control characters into every string of
// v, but those of the keys of keep.
func mangleStrings(v any, keep map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && !keep[k] {
				if _, err := time.Parse(time.RFC3339, s); err != nil { // times are typed
					v[k] = s + "\x00\x07\x1b[31m\u202eé😀\ufeff"
				}
				continue
			}
			mangleStrings(e, keep)
		}
	case []any:
		for _, e := range v {
			mangleStrings(e, keep)
		}
	}
}

// A pull request from a fork whose head branch has the base branch's name
// is the pull request's build, not the branch's: the two never share a
// build.
func TestForkWithTheBaseBranchName(t *testing.T) {
	f := newFixture(t)
	pr := edit(t, payload(t, "pull_request.opened"), func(m map[string]any) {
		p := obj(m, "pull_request")
		head, base := obj(p, "head"), obj(p, "base")
		head["ref"] = base["ref"]
		obj(head, "repo")["full_name"] = "someone/hello-world"
		head["label"] = "someone:" + base["ref"].(string)
	})
	if w := f.serve(delivery("pull_request", pr)); w.Code != http.StatusCreated {
		t.Fatalf("pull request: %d %q", w.Code, w.Body.String())
	}
	if w := f.serve(delivery("push", payload(t, "push.branch"))); w.Code != http.StatusCreated {
		t.Fatalf("push: %d %q", w.Code, w.Body.String())
	}
	calls := f.deployer.Calls()
	if len(calls) != 2 || calls[0].Ref.PR != prNumber || calls[1].Ref.PR != 0 || calls[0].Ref.TargetBranch != calls[1].Ref.TargetBranch {
		t.Fatalf("calls %v: want the pull request's build then the branch's, on one target branch", calls)
	}
	if a, b := calls[0].Ref.Name(), calls[1].Ref.Name(); a == b {
		t.Errorf("the pull request and the branch share the build %s", a)
	}
	if got := calls[0].Ref; got != (model.Ref{Repo: testRepo, TargetBranch: got.TargetBranch, PR: prNumber, Commit: prSHA}) {
		t.Errorf("pull request build %+v", got)
	}
}
