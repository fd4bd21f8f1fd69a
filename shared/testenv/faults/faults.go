// Package faults is a fault-injecting transport for the test rig: put
// between a client and the API server (rest.Config.Wrap), it delays
// requests, resets connections before or after the request reached the
// server, answers 409, 429 (with Retry-After), 500 or 503 in the API
// server's own format, or holds a request until its context ends, on the
// requests its rules choose, at a rate. Its random choices come from a
// seed, so that a failing run can be run again.
package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"runboat.dev/shared/testenv/e2e"
)

// Kind is what a fault does to a request.
type Kind string

// The kinds of faults.
const (
	// Delay holds the request for Rule.Delay, then sends it.
	Delay Kind = "delay"
	// ResetBefore fails the request with a connection reset before it is
	// sent: nothing reaches the server.
	ResetBefore Kind = "reset-before"
	// ResetAfter sends the request, then fails it with a connection
	// reset: the server did it, the client does not know.
	ResetAfter Kind = "reset-after"
	// Status answers Rule.Code without sending the request, with a
	// Retry-After header when Rule.RetryAfter is set.
	Status Kind = "status"
	// Timeout holds the request for Rule.Delay, or until its context ends
	// when Delay is 0, as a server that does not answer, then fails it with
	// an i/o timeout (nothing reaches the server).
	Timeout Kind = "timeout"
)

// Every is a rule of each kind, with each status the API server gives
// (409 on updates, 429 with Retry-After, 500, 503), connections reset
// before any request and after writes, timeouts and delays, at rates that
// add up to about one request in eight, times scale.
func Every(scale float64) []Rule {
	writes := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return []Rule{
		{Kind: Status, Code: http.StatusInternalServerError, Rate: 0.02 * scale},
		{Kind: Status, Code: http.StatusServiceUnavailable, Rate: 0.02 * scale},
		{Kind: Status, Code: http.StatusTooManyRequests, RetryAfter: time.Second, Rate: 0.02 * scale},
		{Kind: Status, Code: http.StatusConflict, Methods: []string{http.MethodPut, http.MethodPatch}, Rate: 0.05 * scale},
		{Kind: ResetBefore, Rate: 0.02 * scale},
		{Kind: ResetAfter, Methods: writes, Rate: 0.05 * scale},
		{Kind: Timeout, Delay: 2 * time.Second, Rate: 0.01 * scale},
		{Kind: Delay, Delay: 300 * time.Millisecond, Rate: 0.02 * scale},
	}
}

// Rule chooses requests and what to do to them.
type Rule struct {
	Kind Kind
	// Code is the status of a Status fault: 409, 429, 500, 503...
	Code int
	// RetryAfter, when set, is the Retry-After header of a Status fault.
	RetryAfter time.Duration
	// Delay is how long a Delay or Timeout fault holds the request.
	Delay time.Duration
	// Methods are the HTTP methods chosen; none chooses every method.
	Methods []string
	// Resources are the resource types chosen (deployments, jobs,
	// leases...); none chooses every resource.
	Resources []string
	// Rate is the share of the chosen requests that get the fault, from 0
	// to 1.
	Rate float64
}

func (r Rule) String() string {
	s := string(r.Kind)
	if r.Kind == Status {
		s += " " + strconv.Itoa(r.Code)
	}
	if len(r.Methods) > 0 {
		s += " " + strings.Join(r.Methods, ",")
	}
	if len(r.Resources) > 0 {
		s += " " + strings.Join(r.Resources, ",")
	}
	return s
}

func (r Rule) chooses(req *http.Request) bool {
	if len(r.Methods) > 0 && !slices.Contains(r.Methods, req.Method) {
		return false
	}
	return len(r.Resources) == 0 || slices.Contains(r.Resources, e2e.ResourceOf(req.URL.Path))
}

// Injector injects the faults of its rules into the requests of the
// clients it wraps. The first rule that chooses a request and draws it
// decides; a request no rule draws goes through untouched.
type Injector struct {
	rules []Rule

	mu       sync.Mutex
	rnd      *rand.Rand
	off      bool
	injected map[string]int
	requests int
}

// New returns an Injector of rules, drawing from seed. It refuses a rule
// that cannot be carried out.
func New(seed uint64, rules ...Rule) (*Injector, error) {
	for _, r := range rules {
		switch {
		case r.Rate < 0 || r.Rate > 1:
			return nil, fmt.Errorf("fault %s: rate %v out of [0, 1]", r, r.Rate)
		case r.Kind == Status && (r.Code < 400 || r.Code > 599):
			return nil, fmt.Errorf("fault %s: status %d is not an error", r, r.Code)
		case r.Kind == Delay && r.Delay <= 0:
			return nil, fmt.Errorf("fault %s: no delay", r)
		case !slices.Contains([]Kind{Delay, ResetBefore, ResetAfter, Status, Timeout}, r.Kind):
			return nil, fmt.Errorf("fault %q: unknown kind", r.Kind)
		}
	}
	return &Injector{rules: rules, rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), injected: map[string]int{}}, nil
}

// Wrap is for rest.Config.Wrap.
func (i *Injector) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper{i: i, next: rt}
}

// Stop lets every later request through: the faults end.
func (i *Injector) Stop() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.off = true
}

// Injected counts the faults injected so far by rule, and the requests
// seen.
func (i *Injector) Injected() (byRule map[string]int, requests int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := map[string]int{}
	for k, v := range i.injected {
		out[k] = v
	}
	return out, i.requests
}

// draw picks the rule that applies to req, if any.
func (i *Injector) draw(req *http.Request) (Rule, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.requests++
	if i.off {
		return Rule{}, false
	}
	for _, r := range i.rules {
		if r.chooses(req) && i.rnd.Float64() < r.Rate {
			i.injected[r.String()]++
			return r, true
		}
	}
	return Rule{}, false
}

type roundTripper struct {
	i    *Injector
	next http.RoundTripper
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	r, ok := t.i.draw(req)
	if !ok {
		return t.next.RoundTrip(req)
	}
	switch r.Kind {
	case Delay:
		select {
		case <-time.After(r.Delay):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		return t.next.RoundTrip(req)
	case ResetBefore:
		return nil, reset(req)
	case ResetAfter:
		resp, err := t.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return nil, reset(req)
	case Timeout:
		var after <-chan time.Time
		if r.Delay > 0 {
			after = time.After(r.Delay)
		}
		select {
		case <-after:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Addr: addr(req.URL.Host), Err: os.ErrDeadlineExceeded}
	default:
		return status(req, r), nil
	}
}

// reset is the error of a connection reset by the peer, as the net
// package gives it.
func reset(req *http.Request) error {
	return &net.OpError{Op: "read", Net: "tcp", Addr: addr(req.URL.Host), Err: syscall.ECONNRESET}
}

type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

// status is the API server's answer of code to req, a metav1.Status.
func status(req *http.Request, r Rule) *http.Response {
	reason := map[int]metav1.StatusReason{
		http.StatusConflict:            metav1.StatusReasonConflict,
		http.StatusTooManyRequests:     metav1.StatusReasonTooManyRequests,
		http.StatusInternalServerError: metav1.StatusReasonInternalError,
		http.StatusServiceUnavailable:  metav1.StatusReasonServiceUnavailable,
		http.StatusGatewayTimeout:      metav1.StatusReasonTimeout,
	}[r.Code]
	s := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  fmt.Sprintf("injected fault: %s on %s %s", r, req.Method, req.URL.Path),
		Reason:   reason,
		Code:     int32(r.Code),
	}
	header := http.Header{"Content-Type": {"application/json"}}
	if r.RetryAfter > 0 {
		secs := int((r.RetryAfter + time.Second - 1) / time.Second)
		header.Set("Retry-After", strconv.Itoa(secs))
		s.Details = &metav1.StatusDetails{RetryAfterSeconds: int32(secs)}
	}
	body, _ := json.Marshal(s) // a metav1.Status always marshals
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", r.Code, http.StatusText(r.Code)),
		StatusCode:    r.Code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(strings.NewReader(string(body))),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
