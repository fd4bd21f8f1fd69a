package kube

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestRetryReads(t *testing.T) {
	for _, c := range []struct {
		name       string
		method     string
		query      string
		codes      []int // the server's answers, in order; then 200
		retryAfter bool
		wantCode   int
		wantTries  int32
	}{
		{name: "a read answered 503 twice", method: http.MethodGet, codes: []int{503, 503}, wantCode: 200, wantTries: 3},
		{name: "a read answered 500, 502, 504", method: http.MethodGet, codes: []int{500, 502, 504}, wantCode: 200, wantTries: 4},
		{name: "a read failing every time", method: http.MethodGet, codes: []int{503, 503, 503, 503, 503}, wantCode: 503, wantTries: readTries},
		{name: "a write is never tried again", method: http.MethodPost, codes: []int{503}, wantCode: 503, wantTries: 1},
		{name: "a watch is left to its watcher", method: http.MethodGet, query: "?watch=true", codes: []int{503}, wantCode: 503, wantTries: 1},
		{name: "Retry-After is client-go's", method: http.MethodGet, codes: []int{503}, retryAfter: true, wantCode: 503, wantTries: 1},
		{name: "a 404 is an answer", method: http.MethodGet, codes: []int{404}, wantCode: 404, wantTries: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tries atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(tries.Add(1))
				if n <= len(c.codes) {
					if c.retryAfter {
						w.Header().Set("Retry-After", "1")
					}
					w.WriteHeader(c.codes[n-1])
					return
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer srv.Close()
			req, err := http.NewRequest(c.method, srv.URL+"/api/v1/namespaces/x/pods"+c.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := retryReads(http.DefaultTransport).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != c.wantCode || tries.Load() != c.wantTries {
				t.Errorf("answered %d after %d tries, want %d after %d", resp.StatusCode, tries.Load(), c.wantCode, c.wantTries)
			}
		})
	}
}
