package kube

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/pager"
)

// PageSize is the size of the pages of every list: a namespace of thousands
// of builds is read in a few requests, and a page of full Deployments stays
// a few megabytes.
const PageSize = 500

// List reads the list that opts selects, page by page, with list (such as
// client.AppsV1().Deployments(ns).List or a metadata client's List), and
// passes each object to keep, which returns what to retain of it (a slim
// copy, a value read off it) and whether to retain anything: a page is let
// go once read, and the next one is fetched while it is. It returns what
// keep retained, in the order of the list, and the resourceVersion of the
// list, from which a watch sees every later change.
//
// A continue token that expired mid-list (410 Gone, after the API server
// compacted its history) fails the list with the API server's error
// (apierrors.IsResourceExpired), as any other failed request does: the pages
// read are of a snapshot that the next ones can no longer complete. It never
// falls back to one unpaginated list of everything, as client-go's
// pager.List does.
func List[T any, L runtime.Object, O any](ctx context.Context, list func(context.Context, metav1.ListOptions) (L, error),
	opts metav1.ListOptions, keep func(*T) (O, bool),
) ([]O, string, error) {
	if opts.Limit == 0 {
		opts.Limit = PageSize
	}
	var rv string
	p := &pager.ListPager{
		PageSize: PageSize,
		PageFn: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			page, err := list(ctx, opts)
			if err != nil {
				return nil, err
			}
			if opts.Continue == "" {
				m, err := meta.ListAccessor(page)
				if err != nil {
					return nil, fmt.Errorf("failed to read a list: %w", err)
				}
				rv = m.GetResourceVersion()
			}
			return page, nil
		},
		// The next page is fetched while a page is read; no more are held.
		PageBufferSize: 0,
		// EachListItem never falls back; said for the reader.
		FullListIfExpired: false,
	}
	var out []O
	err := p.EachListItem(ctx, opts, func(obj runtime.Object) error {
		item, ok := any(obj).(*T)
		if !ok {
			return fmt.Errorf("failed to read a list: item of type %T, want %T", obj, item)
		}
		if o, ok := keep(item); ok {
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	// rv was set by the pager's goroutine, which ended before EachListItem
	// returned.
	return out, rv, nil
}
