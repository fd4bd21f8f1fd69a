package e2e_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/localcluster"
)

// demoPod is a pod of the demo image serving on 8080, Ready by its probe.
func demoPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
			Containers: []corev1.Container{{
				Name:    "web",
				Image:   localcluster.DemoImage,
				Command: []string{"/runboat-demo", "serve"},
				Env:     []corev1.EnvVar{{Name: "RUNBOAT_BUILD", Value: name}, {Name: "RUNBOAT_COMMIT", Value: "c0ffee"}},
				Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
}

// runDemoPod creates a demo pod on the real node and waits for it to be
// Ready, then checks that it answers HTTP on its pod IP and that its log
// (served by the kubelet through the API server) says so.
func runDemoPod(t *testing.T, cs kubernetes.Interface, ns string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := demoPod("demo")
	localcluster.RealNodePod(&pod.Spec)
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ready *corev1.Pod
	e2e.Wait(t, "the demo pod to be Ready", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = p
				return true, nil
			}
		}
		return false, nil
	})
	if !strings.HasSuffix(ready.Spec.NodeName, "-real-node") {
		t.Errorf("the demo pod ran on %q, want the real node", ready.Spec.NodeName)
	}
	body := e2e.HTTPGet(t, fmt.Sprintf("http://%s:8080/", ready.Status.PodIP))
	if want := "runboat demo build demo\ncommit c0ffee\n"; body != want {
		t.Errorf("the demo pod answered %q, want %q", body, want)
	}
	logs, err := cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading the demo pod's log: %v", err)
	}
	if !strings.Contains(string(logs), "serving build demo on :8080") || !strings.Contains(string(logs), "GET /") {
		t.Errorf("the demo pod's log is %q, want it serving and the requests", logs)
	}
	return ready
}

// A pod that selects the real node runs there for real: the demo image's
// server becomes Ready by its probe, answers on its pod IP, and its log
// comes from the kubelet. A pod that does not stays on the fake nodes.
func TestE2ERealNodeRunsAPod(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	runDemoPod(t, env.Client, env.Namespace)

	ctx := context.Background()
	fake := demoPod("fake")
	if _, err := env.Client.CoreV1().Pods(env.Namespace).Create(ctx, fake, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e2e.Wait(t, "the pod without the toleration to be scheduled", func(ctx context.Context) (bool, error) {
		p, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, fake.Name, metav1.GetOptions{})
		if err != nil || p.Spec.NodeName == "" {
			return false, err
		}
		if p.Spec.NodeName == env.Cluster.RealNodeName() {
			return false, fmt.Errorf("a pod without the toleration ran on the real node")
		}
		return true, nil
	})
}

// The real node of a cluster of its own: its removal leaves no process,
// mount, interface (the bridge, the pods' veths) or iptables chain.
func TestE2ERealNodeDownLeavesNothing(t *testing.T) {
	c := e2e.OwnCluster(t, "runboat-real-node-down", localcluster.WithRealNode())
	// Not e2e.NewOn: its namespace would outlive the cluster.
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runDemoPod(t, cs, metav1.NamespaceDefault)
	veths, err := c.BridgePorts()
	if err != nil {
		t.Fatal(err)
	}
	if len(veths) == 0 {
		t.Fatal("no veth on the pod network's bridge while a pod runs")
	}
	if err := c.Down(context.Background(), io.Discard); err != nil {
		t.Fatal(err)
	}
	left, err := c.NodeLeftovers(context.Background())
	if err != nil || len(left) > 0 {
		t.Errorf("left after Down: %q %v", left, err)
	}
	for _, v := range veths {
		if _, err := os.Stat(filepath.Join("/sys/class/net", v)); err == nil {
			t.Errorf("the pod's veth %s is left after Down", v)
		}
	}
	if ps, err := c.Processes(); err != nil || len(ps) > 0 {
		t.Errorf("processes left after Down: %v %v", ps, err)
	}
}
