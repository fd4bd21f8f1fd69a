// Package lambdaurl serves an http.Handler behind an AWS Lambda function URL
// (payload format 2.0), in the buffered invoke mode (Handler) or the
// response streaming one (StreamingHandler), so that the same handler runs
// as a plain HTTP server and as a Lambda.
package lambdaurl

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"runboat.dev/shared/logging"
)

// Handler adapts h to a function URL. The logger carried by ctx
// (logging.Into: main sets it on the base context of the invocations) gets
// the request id and is carried by the request's context. A request event
// that cannot be turned into an *http.Request (bad base64 body, bad path)
// gets a 400 response and a warning in that log; the function itself never
// returns an error, so Lambda never answers 502 for a client's mistake.
func Handler(h http.Handler) func(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	return func(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		r, ok := request(ctx, req)
		if !ok {
			return events.LambdaFunctionURLResponse{StatusCode: http.StatusBadRequest, Headers: badRequestHeader, Body: badRequestBody}, nil
		}
		w := &responseWriter{header: http.Header{}}
		h.ServeHTTP(w, r)
		return w.response(), nil
	}
}

// StreamingHandler adapts h to a function URL whose invoke mode is
// RESPONSE_STREAM, as Handler does, but the response is sent as it is
// written: its status and headers when h first writes or flushes (or
// returns), then its body, each write reaching the client at once. So a
// stream of Server-Sent Events flows, until h returns or the invocation's
// deadline.
func StreamingHandler(h http.Handler) func(ctx context.Context, req events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
	return func(ctx context.Context, req events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		r, ok := request(ctx, req)
		if !ok {
			return &events.LambdaFunctionURLStreamingResponse{StatusCode: http.StatusBadRequest, Headers: badRequestHeader, Body: strings.NewReader(badRequestBody)}, nil
		}
		body, pw := io.Pipe()
		w := &streamWriter{header: http.Header{}, pw: pw, started: make(chan struct{})}
		go func() {
			defer func() {
				if v := recover(); v != nil {
					logging.From(ctx).Error().Interface("panic", v).Msg("handler panicked")
				}
				w.start(nil)
				pw.Close() //nolint:errcheck,gosec // closing a pipe's writer always succeeds
			}()
			h.ServeHTTP(w, r)
		}()
		select {
		case <-w.started:
		case <-ctx.Done():
			return nil, fmt.Errorf("no response before the invocation ended: %w", ctx.Err())
		}
		headers, cookies := flatten(w.header)
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: w.code, Headers: headers, Cookies: cookies, Body: body}, nil
	}
}

// The response to a request event that cannot be turned into a request.
var (
	badRequestHeader = map[string]string{"Content-Type": "text/plain; charset=utf-8"}
	badRequestBody   = "bad request\n"
)

// request is the request of an event, with the logger of ctx given the
// request id; an event that cannot be a request is logged, and not ok.
func request(ctx context.Context, req events.LambdaFunctionURLRequest) (*http.Request, bool) {
	logger := logging.From(ctx).With().Str("request_id", req.RequestContext.RequestID).Logger()
	r, err := NewRequest(logging.Into(ctx, logger), req)
	if err != nil {
		logger.Warn().Err(err).Msg("function URL request refused")
		return nil, false
	}
	return r, true
}

// NewRequest turns a function URL event into the *http.Request a server
// would have built: method, raw path and query, headers (the event's
// lower-case keys are canonicalized; its cookies become one Cookie header),
// host, remote address and body (decoded when base64).
func NewRequest(ctx context.Context, req events.LambdaFunctionURLRequest) (*http.Request, error) {
	path := req.RawPath
	if path == "" {
		path = "/"
	}
	requestURI := path
	if req.RawQueryString != "" {
		requestURI += "?" + req.RawQueryString
	}
	u, err := url.ParseRequestURI(requestURI)
	if err != nil {
		return nil, fmt.Errorf("failed to parse request path: %w", err)
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return nil, fmt.Errorf("failed to decode base64 body: %w", err)
		}
	}
	method := req.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	r, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("failed to build request: %w", err)
	}
	r.RequestURI = requestURI
	for k, v := range req.Headers {
		r.Header.Set(k, v)
	}
	if len(req.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(req.Cookies, "; "))
	}
	// As a server does, the Host header moves to r.Host.
	r.Host = r.Header.Get("Host")
	r.Header.Del("Host")
	if r.Host == "" {
		r.Host = req.RequestContext.DomainName
	}
	if ip := req.RequestContext.HTTP.SourceIP; ip != "" {
		r.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	if major, minor, ok := http.ParseHTTPVersion(req.RequestContext.HTTP.Protocol); ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = req.RequestContext.HTTP.Protocol, major, minor
	}
	return r, nil
}

// responseWriter buffers a response for the function URL.
type responseWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.body.Len() == 0 {
		sniffContentType(w.header, p)
	}
	n, err := w.body.Write(p)
	if err != nil {
		return n, fmt.Errorf("failed to buffer response: %w", err)
	}
	return n, nil
}

// response is the buffered response as a function URL response: multiple
// values of a header are joined with ", ", Set-Cookie headers become
// cookies, and a body that is not text is base64-encoded.
func (w *responseWriter) response() events.LambdaFunctionURLResponse {
	code := w.code
	if code == 0 {
		code = http.StatusOK
	}
	res := events.LambdaFunctionURLResponse{StatusCode: code}
	res.Headers, res.Cookies = flatten(w.header)
	body := w.body.Bytes()
	if isText(w.header.Get("Content-Type")) && utf8.Valid(body) {
		res.Body = string(body)
	} else {
		res.Body, res.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return res
}

// sniffContentType sets the content type of a response from the first
// bytes of its body, as net/http's server does, when the handler set none.
func sniffContentType(h http.Header, first []byte) {
	if h.Get("Content-Type") == "" && len(first) > 0 {
		h.Set("Content-Type", http.DetectContentType(first))
	}
}

// flatten turns the headers of a response into a function URL's: multiple
// values of a header are joined with ", ", and Set-Cookie headers become
// cookies.
func flatten(h http.Header) (map[string]string, []string) {
	headers := map[string]string{}
	var cookies []string
	for k, vs := range h {
		if k == "Set-Cookie" {
			cookies = append(cookies, vs...)
			continue
		}
		headers[k] = strings.Join(vs, ", ")
	}
	return headers, cookies
}

// streamWriter writes a response into the body of a streaming response.
type streamWriter struct {
	header  http.Header
	code    int
	pw      *io.PipeWriter
	once    sync.Once
	started chan struct{} // closed when the status and headers are known
}

func (w *streamWriter) Header() http.Header { return w.header }

// WriteHeader sets the status of the response; the headers are sent with
// it at the first write or flush.
func (w *streamWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

// start fixes the status and headers, once: the content type is sniffed
// from the first bytes written when h set none.
func (w *streamWriter) start(first []byte) {
	w.once.Do(func() {
		if w.code == 0 {
			w.code = http.StatusOK
		}
		sniffContentType(w.header, first)
		close(w.started)
	})
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.start(p)
	n, err := w.pw.Write(p)
	if err != nil {
		return n, fmt.Errorf("failed to stream the response: %w", err)
	}
	return n, nil
}

// Flush sends the status and headers if they are not yet; what is written
// is never held back.
func (w *streamWriter) Flush() { w.start(nil) }

// isText tells whether a body of this content type can travel as a JSON
// string.
func isText(contentType string) bool {
	if contentType == "" {
		return true // no body
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		mt == "application/json", mt == "application/xml",
		mt == "application/javascript", mt == "application/x-www-form-urlencoded":
		return true
	}
	return false
}
