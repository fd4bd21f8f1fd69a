package kube

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// Reads that fail for a reason that may pass are tried again: client-go
// retries a request whose answer has a Retry-After header (429, and 5xx
// with one) and a GET whose connection was reset, but not a GET answered
// 500, 502, 503 or 504 without Retry-After, nor one that timed out. A
// read changes nothing, so trying it again is safe; a write is never tried
// again here (its outcome is unknown: the caller's plan, run again, finds
// out).
const (
	readTries       = 4
	readBackoff     = 100 * time.Millisecond
	readBackoffCeil = time.Second
)

// retryReads wraps rt so that GET requests are tried up to readTries
// times, waiting readBackoff, then twice as long each time, up to
// readBackoffCeil, while their context lasts.
func retryReads(rt http.RoundTripper) http.RoundTripper {
	return readRetrier{next: rt}
}

type readRetrier struct{ next http.RoundTripper }

func (r readRetrier) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.Query().Get("watch") == "true" {
		return r.next.RoundTrip(req)
	}
	wait := readBackoff
	for try := 1; ; try++ {
		resp, err := r.next.RoundTrip(req)
		if try == readTries || !transient(resp, err) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
		wait = min(2*wait, readBackoffCeil)
	}
}

// transient tells whether a read's failure may pass: a timeout, or an
// answer of 500, 502, 503 or 504 that client-go does not retry itself
// (those with Retry-After it does).
func transient(resp *http.Response, err error) bool {
	if err != nil {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return resp.Header.Get("Retry-After") == ""
	}
	return false
}
