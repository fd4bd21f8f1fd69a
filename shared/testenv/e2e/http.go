package e2e

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// HTTPGet gets url (a pod's address on the real node, say) and returns the
// body; anything but a 200 fails the test.
func HTTPGet(t testing.TB, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close() //nolint:errcheck // read fully below
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
