// Package e2e gives end-to-end tests a real API server: the local cluster of
// package localcluster, started on first use (under its lock, so that test
// packages running at once start it once), and a namespace of its own for
// each test, removed afterwards. A cluster that cannot be started fails the
// test with the reason; it never skips.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"runboat.dev/shared/testenv/localcluster"
)

// Env is what a test gets: a client of the local cluster, as its admin, and a
// namespace of its own.
type Env struct {
	Config    *rest.Config
	Client    kubernetes.Interface
	Namespace string
	Cluster   *localcluster.Cluster
}

var (
	once       sync.Once
	cluster    *localcluster.Cluster
	clusterErr error
)

// startTimeout bounds the wait for the cluster, building it included.
const startTimeout = 30 * time.Minute

func up() (*localcluster.Cluster, error) {
	once.Do(func() {
		c, err := localcluster.Default()
		if err != nil {
			clusterErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		if err := c.Ready(ctx); err == nil {
			cluster = c
			return
		}
		if err := c.Up(ctx, os.Stderr); err != nil {
			clusterErr = fmt.Errorf("failed to start the local cluster: %w", err)
			return
		}
		cluster = c
	})
	return cluster, clusterErr
}

// New returns an Env with a fresh namespace, deleted when the test ends.
func New(t testing.TB) *Env {
	t.Helper()
	c, err := up()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return NewOn(t, c)
}

// OwnCluster starts a local cluster of the test's own, named name, beside
// the shared one (whose binaries it uses), for a test that disturbs its
// control plane; it is removed when the test ends, and the test fails if
// any of its processes, or of its real node's mounts, interfaces or
// iptables chain, is left. Starting one takes about half a minute. It has
// no real node unless opts say so (localcluster.WithRealNode).
func OwnCluster(t testing.TB, name string, opts ...localcluster.Option) *localcluster.Cluster {
	t.Helper()
	if _, err := up(); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	dir, err := localcluster.CacheDir()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	c, err := localcluster.New(name, dir, opts...)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var log strings.Builder
	if err := c.Up(ctx, &log); err != nil {
		t.Fatalf("e2e: failed to start the local cluster %s: %v\n%s", name, err, log.String())
	}
	if ps, err := c.Processes(); err != nil || len(ps) < 5 {
		t.Fatalf("e2e: the processes of the local cluster %s: %v %v, want its five components", name, ps, err)
	}
	t.Cleanup(func() {
		var log strings.Builder
		if err := c.Down(context.Background(), &log); err != nil {
			t.Errorf("e2e: failed to remove the local cluster %s: %v\n%s", name, err, log.String())
		}
		if ps, err := c.Processes(); err != nil || len(ps) > 0 {
			t.Errorf("e2e: processes of the local cluster %s left after its removal: %v %v", name, ps, err)
		}
		if left, err := c.NodeLeftovers(context.Background()); err != nil || len(left) > 0 {
			t.Errorf("e2e: left of the real node of the local cluster %s after its removal: %q %v", name, left, err)
		}
	})
	return c
}

// NewOn is New on the cluster c.
func NewOn(t testing.TB, c *localcluster.Cluster) *Env {
	t.Helper()
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	// Tests make many requests in bursts; the default limits only slow them.
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("e2e: failed to create a client: %v", err)
	}
	ctx := context.Background()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{
			Name:   namespaceName(t.Name()),
			Labels: map[string]string{"runboat.dev/e2e": "true"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("e2e: failed to create the test namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := deleteNamespace(context.Background(), cs, ns.Name); err != nil {
			t.Errorf("e2e: %v", err)
		}
	})
	return &Env{Config: cfg, Client: cs, Namespace: ns.Name, Cluster: c}
}

// The namespace annotations of the admission plugins PodNodeSelector and
// PodTolerationRestriction (enabled on the local cluster): every pod of the
// namespace gets the node selector and the tolerations they hold.
const (
	nodeSelectorAnnotation       = "scheduler.alpha.kubernetes.io/node-selector"
	defaultTolerationsAnnotation = "scheduler.alpha.kubernetes.io/defaultTolerations"
)

// OnRealNode makes every pod created from now on in the test's namespace
// run on the cluster's real node, whatever made it (a CronJob, the
// initializer, a Deployment), as a cluster's admission would put a
// namespace's pods on its own nodes. The test fails if the cluster has no
// real node.
func (e *Env) OnRealNode(t testing.TB) {
	t.Helper()
	if !e.Cluster.HasRealNode() {
		t.Fatalf("e2e: the local cluster has no real node (RUNBOAT_REAL_NODE=off?)")
	}
	var spec corev1.PodSpec
	localcluster.RealNodePod(&spec)
	tolerations, err := json.Marshal(spec.Tolerations)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		nodeSelectorAnnotation:       localcluster.RealNodeLabel + "=true",
		defaultTolerationsAnnotation: string(tolerations),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Client.CoreV1().Namespaces().Patch(ctx, e.Namespace, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("e2e: failed to put the namespace's pods on the real node: %v", err)
	}
}

// WaitTimeout bounds a Wait.
const WaitTimeout = time.Minute

// Wait asks cond every 200 ms until it is done, for up to WaitTimeout, and
// fails the test if cond fails or time runs out; what names what is
// awaited.
func Wait(t testing.TB, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, WaitTimeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// WaitJob waits for the Job name of the test namespace to end with the
// condition want (JobComplete or JobFailed) and returns it; a Job that ends
// otherwise fails the test.
func (e *Env) WaitJob(t testing.TB, name string, want batchv1.JobConditionType) *batchv1.Job {
	t.Helper()
	var got *batchv1.Job
	Wait(t, fmt.Sprintf("job %s %s", name, want), func(ctx context.Context) (bool, error) {
		j, err := e.Client.BatchV1().Jobs(e.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case want:
				got = j
				return true, nil
			case batchv1.JobComplete, batchv1.JobFailed:
				return false, fmt.Errorf("job %s ended %s (%s: %s), want %s", name, c.Type, c.Reason, c.Message, want)
			}
		}
		return false, nil
	})
	return got
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

// namespaceName makes a unique, valid namespace name that says which test it
// belongs to.
func namespaceName(test string) string {
	name := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(test), "-"), "-")
	if len(name) > 40 {
		name = strings.Trim(name[:40], "-")
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix) // crypto/rand.Read never fails
	return "e2e-" + name + "-" + hex.EncodeToString(suffix)
}

// deleteNamespace drops the build finalizers of the namespace's Deployments
// and deletes the namespace without waiting.
func deleteNamespace(ctx context.Context, cs kubernetes.Interface, ns string) error {
	if err := DropBuildFinalizers(ctx, cs, ns); err != nil {
		return err
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("failed to delete the test namespace %s: %w", ns, err)
	}
	return nil
}

// DropBuildFinalizers removes the finalizers of the Deployments of ns: the
// build finalizer would otherwise keep a deleted namespace forever when no
// undeployer runs after a test. A namespace that is gone has none left.
func DropBuildFinalizers(ctx context.Context, cs kubernetes.Interface, ns string) error {
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("failed to list the Deployments of %s: %w", ns, err)
	}
	for _, d := range deps.Items {
		if len(d.Finalizers) == 0 {
			continue
		}
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_, err := cs.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to remove the finalizers of %s/%s: %w", ns, d.Name, err)
		}
	}
	return nil
}
