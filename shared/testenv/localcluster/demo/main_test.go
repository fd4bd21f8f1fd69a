package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestInit(t *testing.T) {
	var out strings.Builder
	vars := map[string]string{"RUNBOAT_BUILD": "b1", "RUNBOAT_REPO": "acme/web", "RUNBOAT_COMMIT": "abc"}
	if err := run(context.Background(), []string{"init"}, &out, env(vars)); err != nil {
		t.Fatal(err)
	}
	if want := "initializing build b1: acme/web at commit abc\n"; !strings.HasPrefix(out.String(), want) || !strings.HasSuffix(out.String(), "initialized\n") {
		t.Errorf("init printed %q, want it to start with %q and end initialized", out.String(), want)
	}
	vars["RUNBOAT_DEMO_INIT_FAIL"] = "yes"
	out.Reset()
	if err := run(context.Background(), []string{"init"}, &out, env(vars)); err == nil || !strings.Contains(err.Error(), "RUNBOAT_DEMO_INIT_FAIL") {
		t.Errorf("init with RUNBOAT_DEMO_INIT_FAIL = %v, want a failure naming it", err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"init", "x"}} {
		if err := run(context.Background(), args, io.Discard, env(nil)); err == nil {
			t.Errorf("run(%q) succeeded, want the usage", args)
		}
	}
}

func TestServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, l, io.Discard, page("b1", "abc")) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "runboat demo build b1\ncommit abc\n" {
		t.Errorf("GET / = %d %q %v", resp.StatusCode, body, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve ended with %v after its context, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop with its context")
	}
}
