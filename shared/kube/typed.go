package kube

import (
	"fmt"

	"k8s.io/client-go/discovery"
	appsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
	batchv1 "k8s.io/client-go/kubernetes/typed/batch/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	eventsv1 "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// Interface is the part of the typed clientset (kubernetes.Interface) that
// the function and the jobs use: the API groups of builds, Jobs, Leases and
// Events, and discovery. The full clientset links a client of every API
// group, a third of the function's size; a *kubernetes.Clientset and the
// fake one satisfy Interface as they are.
type Interface interface {
	Discovery() discovery.DiscoveryInterfaces
	CoreV1() corev1.CoreV1Interface
	AppsV1() appsv1.AppsV1Interface
	BatchV1() batchv1.BatchV1Interface
	CoordinationV1() coordinationv1.CoordinationV1Interface
	EventsV1() eventsv1.EventsV1Interface
}

// typed is the Interface of one configuration, made as kubernetes.NewForConfig
// makes its clients: one HTTP client and one rate limiter shared by every
// group.
type typed struct {
	discovery      *discovery.DiscoveryClient
	coreV1         *corev1.CoreV1Client
	appsV1         *appsv1.AppsV1Client
	batchV1        *batchv1.BatchV1Client
	coordinationV1 *coordinationv1.CoordinationV1Client
	eventsV1       *eventsv1.EventsV1Client
}

func (t *typed) Discovery() discovery.DiscoveryInterfaces { return t.discovery }
func (t *typed) CoreV1() corev1.CoreV1Interface           { return t.coreV1 }
func (t *typed) AppsV1() appsv1.AppsV1Interface           { return t.appsV1 }
func (t *typed) BatchV1() batchv1.BatchV1Interface        { return t.batchV1 }
func (t *typed) CoordinationV1() coordinationv1.CoordinationV1Interface {
	return t.coordinationV1
}
func (t *typed) EventsV1() eventsv1.EventsV1Interface { return t.eventsV1 }

// newTyped returns the typed clients of c.
func newTyped(c *rest.Config) (*typed, error) {
	cfg := *c
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	httpClient, err := rest.HTTPClientFor(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("burst is required to be greater than 0 when QPS is set (%v)", cfg.QPS)
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	var t typed
	if t.coreV1, err = corev1.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if t.appsV1, err = appsv1.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if t.batchV1, err = batchv1.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if t.coordinationV1, err = coordinationv1.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if t.eventsV1, err = eventsv1.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if t.discovery, err = discovery.NewDiscoveryClientForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	return &t, nil
}
