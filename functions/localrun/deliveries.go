package localrun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"runboat.dev/shared/github"
)

// Delivery is a signed sample webhook delivery.
type Delivery struct {
	Event, What string
	Body        []byte
}

// SampleDeliveries returns a push to a branch and two opened pull requests of
// the sample repository, each of a new random commit, made from GitHub's
// payloads in testdataDir (functions/webhook/testdata).
func SampleDeliveries(testdataDir string) ([]Delivery, error) {
	var out []Delivery
	push, err := sample(testdataDir, "push.branch", func(m map[string]any) error {
		m["after"] = randomSHA()
		return nil
	})
	if err != nil {
		return nil, err
	}
	out = append(out, Delivery{Event: "push", What: "push to master", Body: push})
	for range 2 {
		n := 100 + randomInt(900)
		pr, err := sample(testdataDir, "pull_request.opened", func(m map[string]any) error {
			m["number"] = n
			p, ok := m["pull_request"].(map[string]any)
			if !ok {
				return fmt.Errorf("payload has no pull_request object")
			}
			p["number"] = n
			head, ok := p["head"].(map[string]any)
			if !ok {
				return fmt.Errorf("payload has no pull_request.head object")
			}
			head["sha"] = randomSHA()
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, Delivery{Event: "pull_request", What: fmt.Sprintf("pull request #%d opened", n), Body: pr})
	}
	return out, nil
}

func sample(dir, name string, change func(map[string]any) error) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, fmt.Errorf("failed to read the sample payload: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", name, err)
	}
	if err := change(m); err != nil {
		return nil, fmt.Errorf("failed to adapt %s: %w", name, err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("failed to encode %s: %w", name, err)
	}
	return b, nil
}

func randomSHA() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func randomInt(n int) int {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return (int(b[0])<<8 | int(b[1])) % n
}

// Send posts d to the webhook at url, signed with secret as GitHub signs.
func Send(ctx context.Context, url string, secret []byte, d Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return 0, fmt.Errorf("failed to build the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", randomSHA()[:32])
	req.Header.Set("X-Hub-Signature-256", github.Signature(d.Body, secret))
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("failed to send %s: %w", d.What, err)
	}
	defer resp.Body.Close() //nolint:errcheck // read to the end below; nothing to learn from a close error
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("failed to read the answer to %s: %w", d.What, err)
	}
	return resp.StatusCode, nil
}
