package lambdaurl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"runboat.dev/functions/lambdaurl"
	"runboat.dev/shared/logging"
)

// logLines decodes the JSON lines of a log.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// The refusal of a bad request event is written to the logger the Lambda
// runtime's context carries (the one main puts there), with the request id.
func TestBadRequestLoggedToCarriedLogger(t *testing.T) {
	var buf bytes.Buffer
	ctx := logging.Into(context.Background(), zerolog.New(&buf))
	req := urlEvent(http.MethodPost, "/", "", nil, "%%%", true)
	req.RequestContext.RequestID = "req-1"
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if _, err := lambdaurl.Handler(h)(ctx, req); err != nil {
		t.Fatal(err)
	}
	lines := logLines(t, &buf)
	if len(lines) != 1 || lines[0]["message"] != "function URL request refused" || lines[0]["request_id"] != "req-1" || lines[0]["level"] != "warn" {
		t.Fatalf("log %q, want one warning about the refused request with its request_id", buf.String())
	}
}

// The handler behind the function URL finds the carried logger in its
// request's context, with the invocation's request id added.
func TestRequestCarriesLogger(t *testing.T) {
	var buf bytes.Buffer
	ctx := logging.Into(context.Background(), zerolog.New(&buf))
	req := urlEvent(http.MethodGet, "/", "", nil, "", false)
	req.RequestContext.RequestID = "req-2"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logging.From(r.Context()).Info().Msg("inside")
		w.WriteHeader(http.StatusNoContent)
	})
	if _, err := lambdaurl.Handler(h)(ctx, req); err != nil {
		t.Fatal(err)
	}
	lines := logLines(t, &buf)
	if len(lines) != 1 || lines[0]["message"] != "inside" || lines[0]["request_id"] != "req-2" {
		t.Fatalf("log %q, want the inner handler's line with the request_id", buf.String())
	}
}
