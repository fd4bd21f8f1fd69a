package config

import (
	"strings"
	"testing"
)

type kubeOnly struct {
	Kube
}

func TestKubeLoadAndLimits(t *testing.T) {
	for _, tc := range []struct {
		env        map[string]string
		qps        float32
		burst      int
		defaultQPS float32
	}{
		{nil, 50, 100, 50},
		{nil, 200, 400, 200},
		{nil, -1, 1, -1},
		{map[string]string{"RUNBOAT_KUBE_QPS": "20"}, 20, 40, -1},
		{map[string]string{"RUNBOAT_KUBE_QPS": "0.5"}, 0.5, 1, 200},
		{map[string]string{"RUNBOAT_KUBE_QPS": "300", "RUNBOAT_KUBE_BURST": "310"}, 300, 310, 50},
	} {
		var cfg kubeOnly
		if err := Load(tc.env, &cfg); err != nil {
			t.Fatalf("Load(%v): %v", tc.env, err)
		}
		qps, burst := cfg.Limits(tc.defaultQPS)
		if qps != tc.qps || burst != tc.burst {
			t.Errorf("%v with default %g: limits %g/%d, want %g/%d", tc.env, tc.defaultQPS, qps, burst, tc.qps, tc.burst)
		}
	}
}

func TestKubeRefusesBadValues(t *testing.T) {
	var cfg kubeOnly
	err := Load(map[string]string{"RUNBOAT_KUBE_QPS": "-1", "RUNBOAT_KUBE_BURST": "-2"}, &cfg)
	if err == nil || !strings.Contains(err.Error(), "RUNBOAT_KUBE_QPS: must be >= 0, got -1") ||
		!strings.Contains(err.Error(), "RUNBOAT_KUBE_BURST: must be >= 0, got -2") {
		t.Errorf("negative limits: %v", err)
	}
	if err := Load(map[string]string{"RUNBOAT_KUBE_QPS": "fast"}, &cfg); err == nil || !strings.Contains(err.Error(), "KUBE_QPS") {
		t.Errorf("a rate that is no number: %v", err)
	}
}
