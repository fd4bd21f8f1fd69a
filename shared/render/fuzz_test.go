package render

import (
	"testing"
	"unicode/utf8"

	"runboat.dev/shared/model"
)

// FuzzRender: whatever branch a delivery names and whatever values the
// settings give (repository, env, secret env, template vars), each mode of
// each default kubefiles (which chooses one: a render is slow for a fuzz
// target) renders, with those values byte for byte where
// they belong, the same objects and fields as a render of benign values,
// and valid names and labels (checkRenderOf).
func FuzzRender(f *testing.F) {
	f.Add(uint8(0), "main", 0, "oca/mis-builder", "db.example", "s3cret", "free", "ErrImagePull")
	f.Add(uint8(1), "release/2.x", 12, "acme/app", "a\nb", "$(PGPASSWORD)", "{{ .Name }}", "x\"\n  evil: true")
	f.Add(uint8(2), hostile(250, ""), 7, hostile(120, "repo"), hostile(300, "env"), hostile(300, "secret"), hostile(200, "tv"), hostile(180, "annotation"))
	f.Add(uint8(5), "\n---\nkind: Secret", 1, "${HOME}", "%YAML 1.2", "!!binary ", "&anchor *alias", "\u202e\ufeff")
	f.Fuzz(func(t *testing.T, which uint8, branch string, pr int, repo, env, secret, freeText, annotation string) {
		for _, s := range []string{repo, env, secret, freeText, annotation} {
			// Values arrive as JSON (deliveries) or settings: text. An
			// empty template var may rightly leave its field out.
			if s == "" || !utf8.ValidString(s) {
				return
			}
		}
		ref, err := model.NewRef("oca/mis-builder", branch, pr, "fedcba9876543210fedcba9876543210fedcba98")
		if err != nil {
			return
		}
		h := hostileValues{repo: repo, env: env, secret: secret, freeText: freeText, annotation: annotation}
		name := defaultKubefilesNames[int(which)%len(defaultKubefilesNames)]
		mode := requiredModes[int(which)/len(defaultKubefilesNames)%len(requiredModes)]
		checkRenderOf(t, name, defaultKubefiles(t, name), mode, ref, h)
	})
}
