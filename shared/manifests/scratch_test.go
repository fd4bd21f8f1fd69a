package manifests

import (
	"testing"

	"sigs.k8s.io/yaml"
)

func TestScratch(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Render(dir, Options{Namespace: "nsx", Image: "ghcr.io/x/y:v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, _ := yaml.Marshal(o.Object)
		t.Logf("---\n%s", b)
	}
}
