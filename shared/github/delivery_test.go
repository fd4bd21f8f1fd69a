package github

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	gh "github.com/google/go-github/v58/github"
)

var testSecret = []byte("It's a Secret to Everybody")

func headers(event, contentType, signature string) http.Header {
	h := http.Header{}
	if event != "" {
		h.Set("X-GitHub-Event", event)
	}
	h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if signature != "" {
		h.Set("X-Hub-Signature-256", signature)
	}
	return h
}

const pushBody = `{"ref":"refs/heads/main","after":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","repository":{"full_name":"Org/Repo"}}`

func TestSignatureFromGitHubDocs(t *testing.T) {
	// The example of GitHub's "Validating webhook deliveries" page.
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := Signature([]byte("Hello, World!"), testSecret); got != want {
		t.Fatalf("Signature: got %s, want %s", got, want)
	}
	h := headers("ping", "application/json", want)
	if err := checkSignature(h.Get(HeaderSignature), []byte("Hello, World!"), testSecret); err != nil {
		t.Fatalf("documented signature refused: %v", err)
	}
}

func TestParseDeliveryValid(t *testing.T) {
	body := []byte(pushBody)
	for _, tc := range []struct {
		name        string
		contentType string
		body        []byte
		secret      []byte
		signature   string
	}{
		{"json signed", "application/json", body, testSecret, Signature(body, testSecret)},
		{"json with charset", "application/json; charset=utf-8", body, testSecret, Signature(body, testSecret)},
		{"form signed", "application/x-www-form-urlencoded", formBody(body), testSecret, Signature(formBody(body), testSecret)},
		{"no secret, no signature", "application/json", body, nil, ""},
		{"no secret, any signature", "application/json", body, nil, "sha256=00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			event, eventType, id, err := ParseDelivery(headers("push", tc.contentType, tc.signature), tc.body, tc.secret)
			if err != nil {
				t.Fatalf("ParseDelivery: %v", err)
			}
			if eventType != "push" || id != "72d3162e-cc78-11e3-81ab-4c9367dc0958" {
				t.Errorf("got type %q id %q", eventType, id)
			}
			push, ok := event.(*gh.PushEvent)
			if !ok {
				t.Fatalf("got %T, want *PushEvent", event)
			}
			if push.GetRef() != "refs/heads/main" || push.GetRepo().GetFullName() != "Org/Repo" {
				t.Errorf("got ref %q repo %q", push.GetRef(), push.GetRepo().GetFullName())
			}
		})
	}
}

func formBody(payload []byte) []byte {
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

func TestParseDeliveryRefused(t *testing.T) {
	body := []byte(pushBody)
	good := Signature(body, testSecret)
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
		secret []byte
		want   error
	}{
		{"missing signature", headers("push", "application/json", ""), body, testSecret, ErrBadSignature},
		{"wrong secret", headers("push", "application/json", Signature(body, []byte("other"))), body, testSecret, ErrBadSignature},
		{"tampered body", headers("push", "application/json", good), []byte(pushBody + " "), testSecret, ErrBadSignature},
		{"sha1 signature", headers("push", "application/json", "sha1=0123"), body, testSecret, ErrBadSignature},
		{"not hex", headers("push", "application/json", "sha256=zz"), body, testSecret, ErrBadSignature},
		{"bad signature before missing event", headers("", "application/json", "sha256=00"), body, testSecret, ErrBadSignature},
		{"missing event", headers("", "application/json", good), body, testSecret, ErrMalformed},
		{"missing content type", headers("push", "", good), body, testSecret, ErrMalformed},
		{"other content type", headers("push", "text/plain", good), body, testSecret, ErrMalformed},
		{"bad json", headers("push", "application/json", ""), []byte(`{"ref":`), nil, ErrMalformed},
		{"bad json, unknown event", headers("nope", "application/json", ""), []byte(`{`), nil, ErrMalformed},
		{"empty form", headers("push", "application/x-www-form-urlencoded", ""), []byte("a=b"), nil, ErrMalformed},
		{"wrong field type", headers("push", "application/json", ""), []byte(`{"ref":42}`), nil, ErrMalformed},
		{"unknown event", headers("nope", "application/json", ""), []byte(`{}`), nil, ErrUnknownEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			event, _, _, err := ParseDelivery(tc.header, tc.body, tc.secret)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if event != nil {
				t.Errorf("got event %T with an error", event)
			}
			var de *DeliveryError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Errorf("want a *DeliveryError with a reason, got %#v", err)
			}
		})
	}
}
