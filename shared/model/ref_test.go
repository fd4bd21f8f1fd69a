package model

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	sha40 = "0123456789abcdef0123456789abcdef01234567"
	sha64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestNewRefNormalizes(t *testing.T) {
	r, err := NewRef("OCA/Mis-Builder", "16.0", 12, strings.ToUpper(sha40))
	if err != nil {
		t.Fatalf("NewRef: unexpected error: %v", err)
	}
	want := Ref{Repo: "oca/mis-builder", TargetBranch: "16.0", PR: 12, Commit: sha40}
	if r != want {
		t.Errorf("NewRef = %+v, want %+v", r, want)
	}
}

func TestNewRefValid(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		repo, branch, commit string
		pr                   int
	}{
		{"branch build", "oca/mis-builder", "16.0", sha40, 0},
		{"pull request", "oca/mis-builder", "16.0", sha40, 1234},
		{"sha256 commit", "oca/server-env", "main", sha64, 0},
		{"dots and underscores in name", "acme-corp/my_repo.github.io", "release/2.x", sha40, 0},
		{"one letter owner", "a/b", "x", sha40, 0},
		{"longest branch", "a/b", strings.Repeat("b", maxBranchLen), sha40, 0},
		{"hostile but valid UTF-8 branch", "a/b", "x\"\n  evil: ${true} é", sha40, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRef(tc.repo, tc.branch, tc.pr, tc.commit); err != nil {
				t.Errorf("NewRef(%q, %q, %d, %q): unexpected error: %v", tc.repo, tc.branch, tc.pr, tc.commit, err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  Ref
		// want holds one substring per expected problem, in order.
		want []string
	}{
		{
			name: "empty ref",
			ref:  Ref{},
			want: []string{"invalid repository", "empty target branch", "invalid commit"},
		},
		{
			name: "everything wrong",
			ref:  Ref{Repo: "no-slash", TargetBranch: "\xff\xfe", PR: -1, Commit: "abc"},
			want: []string{`invalid repository "no-slash"`, "not valid UTF-8", "invalid pull request number -1", `invalid commit "abc"`},
		},
		{
			name: "upper case repo is not normalized by Validate",
			ref:  Ref{Repo: "OCA/x", TargetBranch: "16.0", Commit: sha40},
			want: []string{`invalid repository "OCA/x"`},
		},
		{
			name: "owner starting with a dash",
			ref:  Ref{Repo: "-oca/x", TargetBranch: "16.0", Commit: sha40},
			want: []string{"invalid repository"},
		},
		{
			name: "owner too long",
			ref:  Ref{Repo: strings.Repeat("o", 40) + "/x", TargetBranch: "16.0", Commit: sha40},
			want: []string{"invalid repository"},
		},
		{
			name: "repo with two slashes",
			ref:  Ref{Repo: "oca/x/y", TargetBranch: "16.0", Commit: sha40},
			want: []string{"invalid repository"},
		},
		{
			name: "branch too long",
			ref:  Ref{Repo: "oca/x", TargetBranch: strings.Repeat("b", maxBranchLen+1), Commit: sha40},
			want: []string{"target branch longer than 1024 bytes"},
		},
		{
			name: "short sha",
			ref:  Ref{Repo: "oca/x", TargetBranch: "16.0", Commit: sha40[:12]},
			want: []string{"invalid commit"},
		},
		{
			name: "upper case sha is not normalized by Validate",
			ref:  Ref{Repo: "oca/x", TargetBranch: "16.0", Commit: strings.ToUpper(sha40)},
			want: []string{"invalid commit"},
		},
		{
			name: "non hex sha",
			ref:  Ref{Repo: "oca/x", TargetBranch: "16.0", Commit: strings.Repeat("g", 40)},
			want: []string{"invalid commit"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ref.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want %d problems", tc.ref, len(tc.want))
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("Validate error %q does not list its problems", err)
			}
			got := joined.Unwrap()
			if len(got) != len(tc.want) {
				t.Fatalf("Validate(%+v) reported %d problems, want %d: %v", tc.ref, len(got), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i].Error(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestNewRefReturnsValidationError(t *testing.T) {
	_, err := NewRef("oca", "", 0, "x")
	if err == nil {
		t.Fatal("NewRef with a bad repo, branch and commit: no error")
	}
	for _, w := range []string{"invalid repository", "empty target branch", "invalid commit"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("NewRef error %q does not mention %q", err, w)
		}
	}
}

// ValidateRepo (of a repository in lower case, as NewRef makes it) and
// ValidateBranch accept and refuse what NewRef does.
func TestValidateRepoAndBranch(t *testing.T) {
	for _, repo := range []string{"oca/mis-builder", "OCA/Mis-Builder", "oca", "", "a/b/c", "oca/" + strings.Repeat("x", 101)} {
		_, refErr := NewRef(repo, "16.0", 0, sha40)
		if err := ValidateRepo(strings.ToLower(repo)); (err == nil) != (refErr == nil) {
			t.Errorf("ValidateRepo(%q) = %v, NewRef says %v", repo, err, refErr)
		}
	}
	for _, branch := range []string{"16.0", "feature/x", "", strings.Repeat("b", maxBranchLen+1), "\xff"} {
		_, refErr := NewRef("oca/mis-builder", branch, 0, sha40)
		if err := ValidateBranch(branch); (err == nil) != (refErr == nil) {
			t.Errorf("ValidateBranch(%q) = %v, NewRef says %v", branch, err, refErr)
		}
	}
	if ValidateRepo("OCA/Mis-Builder") == nil {
		t.Error("ValidateRepo accepted a repository in upper case")
	}
}

// Validate runs for every build of every list: a valid Ref costs no
// allocation.
func TestValidateDoesNotAllocate(t *testing.T) {
	r := Ref{Repo: "oca/mis-builder", TargetBranch: "16.0", PR: 42, Commit: sha40}
	if n := testing.AllocsPerRun(100, func() { _ = r.Validate() }); n != 0 {
		t.Errorf("Validate of a valid Ref: %v allocations, want 0", n)
	}
}

func TestPRString(t *testing.T) {
	if got := (Ref{PR: 0}).PRString(); got != "" {
		t.Errorf("PRString of a branch build = %q, want empty", got)
	}
	if got := (Ref{PR: 42}).PRString(); got != "42" {
		t.Errorf("PRString of PR 42 = %q, want \"42\"", got)
	}
}

func mustRef(t testing.TB, repo, branch string, pr int, commit string) Ref {
	t.Helper()
	r, err := NewRef(repo, branch, pr, commit)
	if err != nil {
		t.Fatalf("NewRef(%q, %q, %d, %q): %v", repo, branch, pr, commit, err)
	}
	return r
}

func assertDNSLabel(t testing.TB, what, s string) {
	t.Helper()
	if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
		t.Errorf("%s %q is not a valid DNS label: %s", what, s, strings.Join(errs, "; "))
	}
}

func TestNameDeterministic(t *testing.T) {
	a := mustRef(t, "OCA/mis-builder", "16.0", 7, strings.ToUpper(sha40))
	b := mustRef(t, "oca/mis-builder", "16.0", 7, sha40)
	if again := mustRef(t, "OCA/mis-builder", "16.0", 7, strings.ToUpper(sha40)); a.Name() != again.Name() {
		t.Errorf("Name is not stable: %q then %q", a.Name(), again.Name())
	}
	if a.Name() != b.Name() {
		t.Errorf("same build, different names: %q and %q", a.Name(), b.Name())
	}
}

func TestNameDistinctAndValid(t *testing.T) {
	base := Ref{Repo: "oca/mis-builder", TargetBranch: "16.0", PR: 0, Commit: sha40}
	refs := []Ref{
		base,
		{Repo: "oca/mis-builder", TargetBranch: "16.0", PR: 1, Commit: sha40},
		{Repo: "oca/mis-builder", TargetBranch: "17.0", PR: 0, Commit: sha40},
		{Repo: "oca/server-env", TargetBranch: "16.0", PR: 0, Commit: sha40},
		{Repo: "oca/mis-builder", TargetBranch: "16.0", PR: 0, Commit: strings.Repeat("f", 40)},
		{Repo: "oca/mis-builder", TargetBranch: "16.0", PR: 0, Commit: sha64},
		// The parts must not run into each other.
		{Repo: "oca/x", TargetBranch: "1", PR: 23, Commit: sha40},
		{Repo: "oca/x", TargetBranch: "12", PR: 3, Commit: sha40},
		{Repo: "oca/x", TargetBranch: "12" + "3", PR: 0, Commit: sha40},
		{Repo: "oca/xy", TargetBranch: "z", PR: 0, Commit: sha40},
		{Repo: "oca/x", TargetBranch: "yz", PR: 0, Commit: sha40},
	}
	// Many more, differing in one field each.
	for i := 1; i <= 300; i++ {
		refs = append(refs,
			Ref{Repo: base.Repo, TargetBranch: base.TargetBranch, PR: 1000 + i, Commit: base.Commit},
			Ref{Repo: base.Repo, TargetBranch: "b" + strconv.Itoa(i), PR: 0, Commit: base.Commit},
			Ref{Repo: base.Repo, TargetBranch: base.TargetBranch, PR: 0, Commit: fakeSha(strconv.Itoa(i))},
		)
	}
	seen := map[string]Ref{}
	for _, r := range refs {
		if err := r.Validate(); err != nil {
			t.Fatalf("test ref %+v is invalid: %v", r, err)
		}
		n := r.Name()
		assertDNSLabel(t, "name", n)
		if errs := validation.IsValidLabelValue(n); len(errs) > 0 {
			t.Errorf("name %q is not a valid label value: %v", n, errs)
		}
		if prev, ok := seen[n]; ok {
			t.Errorf("refs %+v and %+v have the same name %q", prev, r, n)
		}
		seen[n] = r
	}
}

// fakeSha is a valid 40-hex sha derived from seed.
func fakeSha(seed string) string {
	sum := sha1.Sum([]byte(seed))
	return hex.EncodeToString(sum[:])
}

// pySlug is an independent transcription of the Python runboat's make_slug,
// with no length limit: slugify(s) = re.sub(r"[^a-z0-9]", "-", str(s).lower()).
func pySlug(r Ref) string {
	nonSlug := regexp.MustCompile(`[^a-z0-9]`)
	slugify := func(s string) string { return nonSlug.ReplaceAllString(strings.ToLower(s), "-") }
	s := slugify(r.Repo) + "-" + slugify(r.TargetBranch)
	if r.PR != 0 {
		s += "-pr" + slugify(strconv.Itoa(r.PR))
	}
	return s + "-" + r.Commit[:12]
}

func TestSlugMatchesPythonRunboat(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  Ref
		want string
	}{
		{"branch", mustRef(t, "OCA/mis-builder", "16.0", 0, sha40), "oca-mis-builder-16-0-0123456789ab"},
		{"pull request", mustRef(t, "OCA/mis-builder", "16.0", 1234, sha40), "oca-mis-builder-16-0-pr1234-0123456789ab"},
		{"upper case branch", mustRef(t, "acsone/Odoo_Addons.x", "Feature/Big-THING", 0, sha40), "acsone-odoo-addons-x-feature-big-thing-0123456789ab"},
		{"trailing dash kept", mustRef(t, "oca/x", "fix-", 0, sha40), "oca-x-fix--0123456789ab"},
		{"one dash per character", mustRef(t, "oca/x", "a..b__c", 0, sha40), "oca-x-a--b--c-0123456789ab"},
		{"one dash per unicode character", mustRef(t, "oca/x", "été", 0, sha40), "oca-x--t--0123456789ab"},
		{"sha256 commit", mustRef(t, "oca/x", "main", 3, sha64), "oca-x-main-pr3-0123456789ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.ref.Slug()
			if got != tc.want {
				t.Errorf("Slug() = %q, want %q", got, tc.want)
			}
			if py := pySlug(tc.ref); got != py {
				t.Errorf("Slug() = %q, Python runboat gives %q", got, py)
			}
			assertDNSLabel(t, "slug", got)
		})
	}
}

// hostileBranch is 250 characters of what a branch name may hold and YAML,
// shells and templates must not interpret.
func hostileBranch() string {
	piece := "x\"'\n  evil: ${HOME} $(id) `id` {{ .Values }} é€😀\t\\ /--"
	var b strings.Builder
	for utf8.RuneCountInString(b.String()) < 250 {
		b.WriteString(piece)
	}
	runes := []rune(b.String())[:250]
	return string(runes)
}

func TestSlugHostileBranch(t *testing.T) {
	branch := hostileBranch()
	if n := utf8.RuneCountInString(branch); n != 250 {
		t.Fatalf("test branch has %d characters, want 250", n)
	}
	for _, pr := range []int{0, 7, 123456789} {
		r, err := NewRef("oca/mis-builder", branch, pr, sha40)
		if err != nil {
			t.Fatalf("NewRef refused the hostile branch: %v", err)
		}
		s := r.Slug()
		assertDNSLabel(t, "slug", s)
		if len(s) != maxDNSLabel {
			t.Errorf("slug %q has %d bytes, want it cut to exactly %d", s, len(s), maxDNSLabel)
		}
		suffix := "-" + sha40[:12]
		if pr != 0 {
			suffix = "-pr" + strconv.Itoa(pr) + suffix
		}
		if !strings.HasSuffix(s, suffix) {
			t.Errorf("slug %q lost its suffix %q", s, suffix)
		}
		if !strings.HasPrefix(s, "oca-mis-builder-x---") {
			t.Errorf("slug %q does not start with the repo and branch", s)
		}
		if full := pySlug(r); !strings.HasPrefix(full, strings.TrimSuffix(s, suffix)) {
			t.Errorf("slug %q is not a cut of the Python slug %q", s, full)
		}
	}
}

func TestSlugCutKeepsSuffix(t *testing.T) {
	owner := strings.Repeat("o", 39)
	name := strings.Repeat("n", 100)
	for _, tc := range []struct {
		branch string
		pr     int
	}{
		{"16.0", 0},
		{"16.0", 99999},
		{strings.Repeat("-", 200), 1},
		{strings.Repeat("b", 255), 2147483647},
	} {
		r := mustRef(t, owner+"/"+name, tc.branch, tc.pr, sha64)
		s := r.Slug()
		assertDNSLabel(t, "slug", s)
		want := "-" + sha64[:12]
		if tc.pr != 0 {
			want = fmt.Sprintf("-pr%d%s", tc.pr, want)
		}
		if !strings.HasSuffix(s, want) {
			t.Errorf("slug %q of PR %d lost its suffix %q", s, tc.pr, want)
		}
		if !strings.HasPrefix(s, owner[:20]) {
			t.Errorf("slug %q does not start with the repo", s)
		}
	}
}

// TestSlugShortEnoughIsPythons checks, over many generated refs, that the
// slug is the Python runboat's whenever that one is a valid DNS label, and a
// valid DNS label keeping the PR and sha otherwise.
func TestSlugShortEnoughIsPythons(t *testing.T) {
	branches := []string{"16.0", "main", "feature/x", "a_b", "-", "é", "x\ny", strings.Repeat("ab-", 20), strings.Repeat("z", 60)}
	repos := []string{"oca/x", "oca/mis-builder", "some-owner/some.repo_name"}
	prs := []int{0, 1, 42, 100000}
	cut, kept := 0, 0
	for _, repo := range repos {
		for _, branch := range branches {
			for _, pr := range prs {
				r := mustRef(t, repo, branch, pr, fakeSha(repo+branch))
				s := r.Slug()
				assertDNSLabel(t, "slug", s)
				py := pySlug(r)
				if len(validation.IsDNS1123Label(py)) == 0 {
					kept++
					if s != py {
						t.Errorf("Slug(%+v) = %q, want the Python slug %q", r, s, py)
					}
				} else {
					cut++
					if !strings.HasSuffix(s, py[len(py)-len(r.Commit[:12])-1:]) {
						t.Errorf("Slug(%+v) = %q lost the sha", r, s)
					}
				}
			}
		}
	}
	if cut == 0 || kept == 0 {
		t.Fatalf("test inputs do not cover both cases: %d cut, %d kept", cut, kept)
	}
}

func FuzzSlug(f *testing.F) {
	f.Add("oca", "mis-builder", "16.0", uint32(0), []byte("a"))
	f.Add("OCA", "Server_Env", "feature/x\n\"y\"", uint32(42), []byte("b"))
	f.Add("a", "b", string([]rune(hostileBranch())[:120]), uint32(4294967295), []byte("c"))
	f.Add("x", "y", "${{ github.token }}", uint32(1), []byte{})
	f.Fuzz(func(t *testing.T, owner, name, branch string, pr uint32, seed []byte) {
		r, err := NewRef(owner+"/"+name, branch, int(pr), fakeSha(string(seed)))
		if err != nil {
			return // only valid refs have a slug
		}
		s := r.Slug()
		if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
			t.Fatalf("Slug(%+v) = %q, not a DNS label: %v", r, s, errs)
		}
		suffix := "-" + r.Commit[:12]
		if r.PR != 0 {
			suffix = "-pr" + strconv.Itoa(r.PR) + suffix
		}
		if !strings.HasSuffix(s, suffix) {
			t.Fatalf("Slug(%+v) = %q lost its suffix %q", r, s, suffix)
		}
		if py := pySlug(r); len(py) <= maxDNSLabel && s != py {
			t.Fatalf("Slug(%+v) = %q, Python runboat gives %q", r, s, py)
		}
	})
}

func TestTargetKey(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	branch := Ref{Repo: "oca/x", TargetBranch: "16.0", Commit: sha}
	pr := Ref{Repo: "oca/x", TargetBranch: "16.0", PR: 12, Commit: sha}
	prOtherBase := Ref{Repo: "oca/x", TargetBranch: "17.0", PR: 12, Commit: strings.Repeat("f", 40)}
	if branch.TargetKey() != BranchKey("OCA/X", "16.0") {
		t.Errorf("branch key %q, want BranchKey of the same repo (any case) and branch", branch.TargetKey())
	}
	if pr.TargetKey() != PRKey("oca/x", 12) || pr.TargetKey() != prOtherBase.TargetKey() {
		t.Errorf("PR keys %q and %q, want the PR's key whatever the base branch and commit", pr.TargetKey(), prOtherBase.TargetKey())
	}
	keys := map[string]bool{}
	for _, k := range []string{branch.TargetKey(), pr.TargetKey(), BranchKey("oca/x", "12"), PRKey("oca/y", 12), BranchKey("oca/x", "16.0\x00")} {
		if keys[k] {
			t.Errorf("duplicate key %q", k)
		}
		keys[k] = true
		if errs := validation.IsValidLabelValue(k); len(errs) > 0 {
			t.Errorf("key %q is not a label value: %v", k, errs)
		}
	}
}
