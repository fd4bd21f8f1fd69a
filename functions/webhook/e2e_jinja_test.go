package webhook

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"runboat.dev/shared/config"
	"runboat.dev/shared/model"
)

// TestE2ERunboatFormatDeploy deploys a push with kubefiles in the Python
// runboat's format (those of the render tests): the build carries the whole
// contract and its objects are named and filled from the template.
func TestE2ERunboatFormatDeploy(t *testing.T) {
	t.Parallel()
	kubefiles, err := filepath.Abs(filepath.Join("..", "..", "shared", "render", "testdata", "runboat-format"))
	if err != nil {
		t.Fatal(err)
	}
	f := newE2EWith(t, func(namespace string) config.Builds {
		return testBuildsWith(t, namespace, config.BuildSettings{
			Image:         "busybox:1.36",
			KubefilesPath: kubefiles,
			Env:           map[string]string{"PGHOST": "postgres"},
			TemplateVars:  map[string]string{"storageClassName": "standard"},
		})
	})
	f.expectCode(t, "push", payload(t, "push.branch"), http.StatusCreated)

	ref := mustRef(t, "master", 0, pushSHA)
	deps := f.builds(t)
	if len(deps) != 1 {
		t.Fatalf("got %d builds, want 1", len(deps))
	}
	checkBuild(t, deps[0], ref)
	if deps[0].Name != ref.Name()+"-web" {
		t.Errorf("Deployment %s, want %s-web", deps[0].Name, ref.Name())
	}
	ctx := context.Background()
	cm, err := f.env.Client.CoreV1().ConfigMaps(f.env.Namespace).Get(ctx, ref.Name()+"-appenv", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["APP_DATABASE"] != ref.Name() || cm.Data["PGHOST"] != "postgres" || cm.Labels[model.LabelBuild] != ref.Name() {
		t.Errorf("env ConfigMap data %v labels %v", cm.Data, cm.Labels)
	}
	ing, err := f.env.Client.NetworkingV1().Ingresses(f.env.Namespace).Get(ctx, ref.Name()+"-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if host := ing.Spec.Rules[0].Host; host != ref.Slug()+"."+testDomain {
		t.Errorf("Ingress host %q, want %s.%s", host, ref.Slug(), testDomain)
	}
	pvc, err := f.env.Client.CoreV1().PersistentVolumeClaims(f.env.Namespace).Get(ctx, ref.Name()+"-data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "standard" {
		t.Errorf("PVC storage class %v, want standard", pvc.Spec.StorageClassName)
	}
}
