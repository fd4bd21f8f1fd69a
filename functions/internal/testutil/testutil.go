// Package testutil holds the helpers that the tests of several packages of
// the function share: a log buffer safe for concurrent writes, the real
// GitHub payloads of functions/webhook/testdata, and signed deliveries.
// Only tests import it.
package testutil

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"runboat.dev/shared/github"
)

// SyncBuffer collects what loggers write from several goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// PayloadDir is the folder of the real GitHub payloads,
// functions/webhook/testdata.
func PayloadDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot find its own source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "webhook", "testdata")
}

// Payload returns the payload name (without .json) of PayloadDir.
func Payload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(PayloadDir(t), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// DeliveryID is the X-GitHub-Delivery of the deliveries of Delivery.
const DeliveryID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

// Delivery is a webhook request of event (no header when empty) to path,
// with its body signed with secret, as GitHub sends it.
func Delivery(path, event string, body, secret []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	r.Header.Set(github.HeaderDelivery, DeliveryID)
	if event != "" {
		r.Header.Set(github.HeaderEvent, event)
	}
	r.Header.Set(github.HeaderSignature, github.Signature(body, secret))
	return r
}
