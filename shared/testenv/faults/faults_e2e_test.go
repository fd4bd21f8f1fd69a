package faults_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/faults"
)

func client(t *testing.T, e *e2e.Env, rules ...faults.Rule) (kubernetes.Interface, *faults.Injector) {
	t.Helper()
	inj, err := faults.New(1, rules...)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(e.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Wrap(inj.Wrap)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, inj
}

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// TestE2EFaults sends requests to the local API server through each kind
// of fault and sees what a client of the real server sees.
func TestE2EFaults(t *testing.T) {
	t.Parallel()
	e := e2e.New(t)
	ctx := context.Background()
	admin := e.Client.CoreV1().ConfigMaps(e.Namespace)
	exists := func(name string) bool {
		t.Helper()
		_, err := admin.Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	post := []string{http.MethodPost}
	cms := []string{"configmaps"}

	t.Run("status", func(t *testing.T) {
		for code, is := range map[int]func(error) bool{
			409: apierrors.IsConflict, 500: apierrors.IsInternalError, 503: apierrors.IsServiceUnavailable,
		} {
			cs, inj := client(t, e, faults.Rule{Kind: faults.Status, Code: code, Methods: post, Resources: cms, Rate: 1})
			_, err := cs.CoreV1().ConfigMaps(e.Namespace).Create(ctx, configMap("status"), metav1.CreateOptions{})
			if !is(err) || !strings.Contains(err.Error(), "injected fault") {
				t.Errorf("%d: %v", code, err)
			}
			if exists("status") {
				t.Errorf("%d: the request reached the server", code)
			}
			// Another resource is not chosen.
			if _, err := cs.CoreV1().Secrets(e.Namespace).List(ctx, metav1.ListOptions{}); err != nil {
				t.Errorf("%d: a request no rule chooses: %v", code, err)
			}
			if by, n := inj.Injected(); by["status "+strconv.Itoa(code)+" POST configmaps"] != 1 || n != 2 {
				t.Errorf("%d: injected %v of %d requests", code, by, n)
			}
		}
	})

	t.Run("429 with Retry-After is retried by client-go", func(t *testing.T) {
		cs, inj := client(t, e, faults.Rule{Kind: faults.Status, Code: 429, RetryAfter: time.Second, Methods: post, Resources: cms, Rate: 0.5})
		for _, name := range []string{"retried-1", "retried-2", "retried-3", "retried-4"} {
			if _, err := cs.CoreV1().ConfigMaps(e.Namespace).Create(ctx, configMap(name), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if by, _ := inj.Injected(); by["status 429 POST configmaps"] == 0 {
			t.Errorf("no 429 drawn in 4 creates at rate 0.5 (seed 1): %v", by)
		}
	})

	t.Run("reset before", func(t *testing.T) {
		cs, _ := client(t, e, faults.Rule{Kind: faults.ResetBefore, Methods: post, Resources: cms, Rate: 1})
		_, err := cs.CoreV1().ConfigMaps(e.Namespace).Create(ctx, configMap("reset-before"), metav1.CreateOptions{})
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("got %v, want a connection reset", err)
		}
		if exists("reset-before") {
			t.Error("the request reached the server")
		}
	})

	t.Run("reset after", func(t *testing.T) {
		cs, _ := client(t, e, faults.Rule{Kind: faults.ResetAfter, Methods: post, Resources: cms, Rate: 1})
		_, err := cs.CoreV1().ConfigMaps(e.Namespace).Create(ctx, configMap("reset-after"), metav1.CreateOptions{})
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("got %v, want a connection reset", err)
		}
		if !exists("reset-after") {
			t.Error("the request did not reach the server")
		}
	})

	t.Run("timeout and delay", func(t *testing.T) {
		cs, _ := client(t, e, faults.Rule{Kind: faults.Timeout, Delay: 50 * time.Millisecond, Methods: post, Resources: cms, Rate: 1})
		_, err := cs.CoreV1().ConfigMaps(e.Namespace).Create(ctx, configMap("timeout"), metav1.CreateOptions{})
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("got %v, want a timeout", err)
		}
		cs, _ = client(t, e, faults.Rule{Kind: faults.Delay, Delay: 300 * time.Millisecond, Methods: post, Resources: cms, Rate: 1})
		start := time.Now()
		if _, err := cs.CoreV1().ConfigMaps(e.Namespace).Create(ctx, configMap("delayed"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("a delayed create took %s", d)
		}
	})

	t.Run("stop", func(t *testing.T) {
		cs, inj := client(t, e, faults.Rule{Kind: faults.Status, Code: 500, Rate: 1})
		inj.Stop()
		if _, err := cs.CoreV1().ConfigMaps(e.Namespace).Create(ctx, configMap("after-stop"), metav1.CreateOptions{}); err != nil {
			t.Errorf("after Stop: %v", err)
		}
	})
}

func TestNewRefusesImpossibleRules(t *testing.T) {
	for _, r := range []faults.Rule{
		{Kind: faults.Status, Code: 200, Rate: 1},
		{Kind: faults.Delay, Rate: 1},
		{Kind: faults.Status, Code: 500, Rate: 2},
		{Kind: "explode", Rate: 1},
	} {
		if _, err := faults.New(1, r); err == nil {
			t.Errorf("%+v: accepted", r)
		}
	}
}
