package lambdaurl_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/rs/zerolog"

	"runboat.dev/functions/internal/testutil"
	"runboat.dev/functions/lambdaurl"
	"runboat.dev/functions/webhook"
	"runboat.dev/shared/github"
	"runboat.dev/shared/model"
)

type ctxKey struct{}

// seen is what the inner handler saw of a request.
type seen struct {
	method, path, escapedPath, rawQuery, requestURI string
	host, remoteAddr, proto                         string
	header                                          http.Header
	cookies                                         []string
	body                                            []byte
	contentLength                                   int64
	ctxValue                                        any
}

func recorder(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			panic(err)
		}
		*s = seen{
			method: r.Method, path: r.URL.Path, escapedPath: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery,
			requestURI: r.RequestURI, host: r.Host, remoteAddr: r.RemoteAddr, proto: r.Proto,
			header: r.Header, body: body, contentLength: r.ContentLength, ctxValue: r.Context().Value(ctxKey{}),
		}
		for _, c := range r.Cookies() {
			s.cookies = append(s.cookies, c.Name+"="+c.Value)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func urlEvent(method, path, query string, headers map[string]string, body string, b64 bool) events.LambdaFunctionURLRequest {
	return events.LambdaFunctionURLRequest{
		Version:         "2.0",
		RawPath:         path,
		RawQueryString:  query,
		Headers:         headers,
		Body:            body,
		IsBase64Encoded: b64,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "abcdefg.lambda-url.eu-west-1.on.aws",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.10", UserAgent: "GitHub-Hookshot/044aadd",
			},
		},
	}
}

func TestRequest(t *testing.T) {
	var s seen
	payload := []byte{0x00, 0xff, '{', '}'}
	req := urlEvent(http.MethodPost, "/a%2Fb/c", "x=1&y=%20z", map[string]string{
		"content-type":   "application/octet-stream",
		"x-github-event": "ping",
		"accept":         "text/plain, application/json",
		"host":           "runboat.example.org",
	}, base64.StdEncoding.EncodeToString(payload), true)
	req.Cookies = []string{"a=1", "b=2"}
	ctx := context.WithValue(context.Background(), ctxKey{}, "carried")

	res, err := lambdaurl.Handler(recorder(&s))(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("status %d, want 204", res.StatusCode)
	}
	for name, got := range map[string][2]string{
		"method":       {s.method, http.MethodPost},
		"path":         {s.path, "/a/b/c"},
		"escaped path": {s.escapedPath, "/a%2Fb/c"},
		"raw query":    {s.rawQuery, "x=1&y=%20z"},
		"request URI":  {s.requestURI, "/a%2Fb/c?x=1&y=%20z"},
		"host":         {s.host, "runboat.example.org"},
		"remote addr":  {s.remoteAddr, "192.0.2.10:0"},
		"proto":        {s.proto, "HTTP/1.1"},
		"event header": {s.header.Get("X-GitHub-Event"), "ping"},
		"accept":       {s.header.Get("Accept"), "text/plain, application/json"},
		"host header":  {s.header.Get("Host"), ""},
	} {
		if got[0] != got[1] {
			t.Errorf("%s: got %q, want %q", name, got[0], got[1])
		}
	}
	if !bytes.Equal(s.body, payload) || s.contentLength != int64(len(payload)) {
		t.Errorf("body %q (length %d), want %q", s.body, s.contentLength, payload)
	}
	if !slices.Equal(s.cookies, []string{"a=1", "b=2"}) {
		t.Errorf("cookies %v", s.cookies)
	}
	if s.ctxValue != "carried" {
		t.Errorf("context not carried: %v", s.ctxValue)
	}
}

func TestRequestDefaults(t *testing.T) {
	var s seen
	req := urlEvent(http.MethodGet, "", "", nil, "plain body", false)
	if _, err := lambdaurl.Handler(recorder(&s))(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if s.path != "/" || s.host != "abcdefg.lambda-url.eu-west-1.on.aws" || string(s.body) != "plain body" {
		t.Errorf("got path %q host %q body %q", s.path, s.host, s.body)
	}
}

func TestBadRequestEvent(t *testing.T) {
	called := false
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
	res, err := lambdaurl.Handler(h)(context.Background(), urlEvent(http.MethodPost, "/", "", nil, "%%%", true))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusBadRequest || called {
		t.Errorf("got %d (handler called: %v), want 400 without calling the handler", res.StatusCode, called)
	}
}

func TestResponse(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0xff}
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		code    int
		body    string
		base64  bool
		headers map[string]string
		cookies []string
	}{
		{
			name: "json with headers and cookies",
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Add("Vary", "Accept")
				w.Header().Add("Vary", "Cookie")
				http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
				http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, `{"ok":`)
				_, _ = io.WriteString(w, `true}`)
			},
			code: http.StatusCreated, body: `{"ok":true}`,
			headers: map[string]string{"Content-Type": "application/json", "Vary": "Accept, Cookie"},
			cookies: []string{"a=1", "b=2"},
		},
		{
			name: "implicit 200 and detected text",
			h:    func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") },
			code: http.StatusOK, body: "hello",
			headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		},
		{
			name: "binary body",
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "image/png")
				_, _ = w.Write(binary)
			},
			code: http.StatusOK, body: base64.StdEncoding.EncodeToString(binary), base64: true,
		},
		{
			name: "invalid UTF-8 labelled text",
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write([]byte{0xff, 0xfe})
			},
			code: http.StatusOK, body: "//4=", base64: true,
		},
		{
			name: "first status wins",
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusTeapot)
				w.WriteHeader(http.StatusOK)
			},
			code: http.StatusTeapot,
		},
		{
			name: "nothing written",
			h:    func(http.ResponseWriter, *http.Request) {},
			code: http.StatusOK,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := lambdaurl.Handler(tc.h)(context.Background(), urlEvent(http.MethodGet, "/", "", nil, "", false))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.code || res.Body != tc.body || res.IsBase64Encoded != tc.base64 {
				t.Errorf("got %d %q (base64 %v), want %d %q (base64 %v)", res.StatusCode, res.Body, res.IsBase64Encoded, tc.code, tc.body, tc.base64)
			}
			for k, v := range tc.headers {
				if res.Headers[k] != v {
					t.Errorf("header %s: got %q, want %q", k, res.Headers[k], v)
				}
			}
			if _, ok := res.Headers["Set-Cookie"]; ok {
				t.Errorf("Set-Cookie left in headers: %v", res.Headers)
			}
			if !slices.Equal(res.Cookies, tc.cookies) {
				t.Errorf("cookies %q, want %q", res.Cookies, tc.cookies)
			}
		})
	}
}

// nopDeployer deploys nothing and says the build is new.
type nopDeployer struct{ deploys int }

func (d *nopDeployer) Deploy(_ context.Context, ref model.Ref) (string, bool, error) {
	d.deploys++
	return ref.Name(), true, nil
}

func (d *nopDeployer) UndeployBranch(context.Context, string, string) (int, error) { return 0, nil }

func (d *nopDeployer) UndeployPR(context.Context, string, int) (int, error) { return 0, nil }

func TestWebhookBehindFunctionURL(t *testing.T) {
	secret := []byte("function-url-secret")
	d := &nopDeployer{}
	h, err := webhook.New(webhook.Options{
		Secret:    secret,
		Supported: func(repo, branch string) bool { return repo == "codertocat/hello-world" && branch == "master" },
		Deployer:  d,
		Statuses:  github.NoopStatusPoster{},
		Logger:    zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	fn := lambdaurl.Handler(h)
	sign := func(body []byte) string { return github.Signature(body, secret) }
	// Function URLs deliver lower-case header names.
	headers := func(event, signature string) map[string]string {
		return map[string]string{
			"content-type":        "application/json",
			"x-github-event":      event,
			"x-github-delivery":   testutil.DeliveryID,
			"x-hub-signature-256": signature,
		}
	}
	ping, push := testutil.Payload(t, "ping"), testutil.Payload(t, "push.branch")
	for _, tc := range []struct {
		name string
		req  events.LambdaFunctionURLRequest
		want int
	}{
		{"signed ping", urlEvent(http.MethodPost, webhook.Path, "", headers("ping", sign(ping)), string(ping), false), http.StatusOK},
		{"bad signature", urlEvent(http.MethodPost, webhook.Path, "", headers("ping", sign([]byte("other"))), string(ping), false), http.StatusUnauthorized},
		{"signed push, base64 body", urlEvent(http.MethodPost, webhook.Path, "", headers("push", sign(push)), base64.StdEncoding.EncodeToString(push), true), http.StatusCreated},
		{"GET", urlEvent(http.MethodGet, webhook.Path, "", nil, "", false), http.StatusMethodNotAllowed},
	} {
		res, err := fn(context.Background(), tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.StatusCode != tc.want {
			t.Errorf("%s: got %d %q, want %d", tc.name, res.StatusCode, res.Body, tc.want)
		}
	}
	if d.deploys != 1 {
		t.Errorf("got %d deploys, want 1", d.deploys)
	}
}

// The streaming adapter sends the status and headers at the first flush,
// and each write as it is made, while the handler goes on.
func TestStreamingHandlerStreams(t *testing.T) {
	next := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Add("Set-Cookie", "a=1")
		w.WriteHeader(http.StatusAccepted)
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		<-next
		_, _ = io.WriteString(w, "data: one\n\n")
		<-next
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	res, err := lambdaurl.StreamingHandler(h)(context.Background(), urlEvent(http.MethodGet, "/events", "", nil, "", false))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusAccepted || res.Headers["Content-Type"] != "text/event-stream" || !slices.Equal(res.Cookies, []string{"a=1"}) {
		t.Fatalf("response %d %v %v, want 202 text/event-stream with the cookie, before the body", res.StatusCode, res.Headers, res.Cookies)
	}
	for _, want := range []string{"data: one\n\n", "data: two\n\n"} {
		next <- struct{}{}
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != want {
			t.Fatalf("read %q (%v), want %q while the handler goes on", buf, err, want)
		}
	}
	if rest, err := io.ReadAll(res.Body); err != nil || len(rest) != 0 {
		t.Errorf("after the handler returned: %q, %v; want the end of the body", rest, err)
	}
}

// What Lambda receives is the prelude (status, headers) then the body.
func TestStreamingHandlerWireFormat(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "<!doctype html><p>hi")
	})
	res, err := lambdaurl.StreamingHandler(h)(context.Background(), urlEvent(http.MethodGet, "/", "", nil, "", false))
	if err != nil {
		t.Fatal(err)
	}
	wire, err := io.ReadAll(res)
	if err != nil {
		t.Fatal(err)
	}
	prelude, body, ok := bytes.Cut(wire, make([]byte, 8))
	if !ok || string(body) != "<!doctype html><p>hi" || !bytes.Contains(prelude, []byte(`"statusCode":200`)) || !bytes.Contains(prelude, []byte(`text/html`)) {
		t.Errorf("wire format %q: want a JSON prelude with status 200 and the sniffed type, 8 zero bytes, the body", wire)
	}
}

// A handler that returns without writing gives its status, and an event
// that is no request a 400, as the buffered adapter does.
func TestStreamingHandlerNoBodyAndBadEvent(t *testing.T) {
	res, err := lambdaurl.StreamingHandler(http.NotFoundHandler())(context.Background(), urlEvent(http.MethodGet, "/x", "", nil, "", false))
	if err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("not found: %v, %v", res, err)
	}
	res, err = lambdaurl.StreamingHandler(http.NotFoundHandler())(context.Background(), urlEvent(http.MethodPost, "/", "", nil, "%%%", true))
	if err != nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad base64 body: %v, %v; want 400", res, err)
	}
}
