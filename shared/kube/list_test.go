package kube

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pages serves n Deployments in pages of the requested size, the list at
// resourceVersion "7" on the first page and another on the next ones, and
// records the options of each request. expire makes the request of that
// page (counted from 0) fail with 410 Gone.
type pages struct {
	n, expire int
	requests  []metav1.ListOptions
}

func (p *pages) list(_ context.Context, opts metav1.ListOptions) (*appsv1.DeploymentList, error) {
	p.requests = append(p.requests, opts)
	start := 0
	if opts.Continue != "" {
		start, _ = strconv.Atoi(opts.Continue)
	}
	if len(p.requests)-1 == p.expire {
		return nil, apierrors.NewResourceExpired("the continue token is too old")
	}
	out := &appsv1.DeploymentList{ListMeta: metav1.ListMeta{ResourceVersion: "7"}}
	if opts.Continue != "" {
		out.ResourceVersion = "8"
	}
	end := min(start+int(opts.Limit), p.n)
	if opts.Limit == 0 {
		end = p.n
	}
	for i := start; i < end; i++ {
		out.Items = append(out.Items, appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint(i)}})
	}
	if end < p.n {
		out.Continue = strconv.Itoa(end)
	}
	return out, nil
}

func TestListPagesAndKeeps(t *testing.T) {
	p := &pages{n: 2*PageSize + 3, expire: -1}
	even := func(d *appsv1.Deployment) (string, bool) {
		i, _ := strconv.Atoi(d.Name)
		return d.Name, i%2 == 0
	}
	got, rv, err := List(context.Background(), p.list, metav1.ListOptions{LabelSelector: "runboat/build"}, even)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.requests) != 3 {
		t.Errorf("%d requests, want 3", len(p.requests))
	}
	for i, r := range p.requests {
		if r.Limit != PageSize || r.LabelSelector != "runboat/build" {
			t.Errorf("request %d: limit %d, selector %q; want %d, runboat/build", i, r.Limit, r.LabelSelector, PageSize)
		}
	}
	if rv != "7" {
		t.Errorf("resourceVersion %q, want the first page's, 7", rv)
	}
	if len(got) != PageSize+2 || got[0] != "0" || got[1] != "2" || got[len(got)-1] != strconv.Itoa(2*PageSize+2) {
		t.Errorf("kept %d items (%v...), want the %d even ones in order", len(got), got[:min(3, len(got))], PageSize+2)
	}
}

func TestListFailsOnExpiredContinue(t *testing.T) {
	p := &pages{n: 3 * PageSize, expire: 1}
	all := func(d *appsv1.Deployment) (string, bool) { return d.Name, true }
	got, _, err := List(context.Background(), p.list, metav1.ListOptions{}, all)
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("error %v, want the API server's 410 Expired", err)
	}
	if got != nil {
		t.Errorf("returned %d items with the error", len(got))
	}
	// No fall back to an unpaginated list of everything.
	if len(p.requests) != 2 {
		t.Errorf("%d requests, want 2 (the first page, the expired one)", len(p.requests))
	}
}

func TestListHonoursLimit(t *testing.T) {
	p := &pages{n: 3, expire: -1}
	all := func(d *appsv1.Deployment) (appsv1.Deployment, bool) { return *d, true }
	got, rv, err := List(context.Background(), p.list, metav1.ListOptions{Limit: 2}, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || rv != "7" || len(p.requests) != 2 || p.requests[0].Limit != 2 {
		t.Errorf("%d items at %q in %d requests (limit %d), want 3 at 7 in 2 (limit 2)", len(got), rv, len(p.requests), p.requests[0].Limit)
	}
}
