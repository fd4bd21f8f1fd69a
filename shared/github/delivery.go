// Package github is the project's access to GitHub: verifying and parsing
// webhook deliveries, and posting commit statuses. It is built on go-github.
package github

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v58/github"
)

// Headers of a webhook delivery.
const (
	// HeaderEvent names the event type of a delivery.
	HeaderEvent = gh.EventTypeHeader
	// HeaderDelivery is the unique id of a delivery.
	HeaderDelivery = gh.DeliveryIDHeader
	// HeaderSignature is the HMAC-SHA256 signature of the body, "sha256=<hex>".
	HeaderSignature = gh.SHA256SignatureHeader
)

// signaturePrefix is the only signature scheme accepted: SHA-1 signatures
// (X-Hub-Signature) are not.
const signaturePrefix = "sha256="

// Sentinel errors of ParseDelivery; test them with errors.Is.
var (
	// ErrBadSignature: a secret is set and the signature is missing or wrong.
	ErrBadSignature = errors.New("bad signature")
	// ErrMalformed: the delivery cannot be read (missing event header,
	// unsupported content type, invalid JSON).
	ErrMalformed = errors.New("malformed delivery")
	// ErrUnknownEvent: a well-formed delivery of an event type go-github does
	// not know. Such an event can only be ignored.
	ErrUnknownEvent = errors.New("unknown event type")
)

// DeliveryError is the error of a delivery that was refused. Reason is short,
// fixed text that may be sent back to the client; Err holds the details, for
// the log only. It matches Kind with errors.Is.
type DeliveryError struct {
	// Kind is ErrBadSignature, ErrMalformed or ErrUnknownEvent.
	Kind error
	// Reason is safe to show to the sender.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *DeliveryError) Error() string {
	if e.Err == nil {
		return e.Kind.Error() + ": " + e.Reason
	}
	return e.Kind.Error() + ": " + e.Reason + ": " + e.Err.Error()
}

// Unwrap makes both Kind and Err visible to errors.Is and errors.As.
func (e *DeliveryError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// ParseDelivery verifies and parses one webhook delivery, given its headers
// and its whole body.
//
// When secret is not empty, the X-Hub-Signature-256 header must be the
// HMAC-SHA256 of the body (ErrBadSignature otherwise); this is checked before
// anything else is read. When secret is empty, signatures are not checked at
// all: whether that is allowed is the caller's decision.
//
// The event is the go-github event struct for the X-GitHub-Event header (for
// example *gh.PushEvent). Errors are *DeliveryError values matching
// ErrBadSignature, ErrMalformed or ErrUnknownEvent; the event type and
// delivery id are returned whenever the headers hold them, errors included.
func ParseDelivery(header http.Header, body, secret []byte) (event any, eventType, deliveryID string, err error) {
	eventType = header.Get(HeaderEvent)
	deliveryID = header.Get(HeaderDelivery)

	if len(secret) > 0 {
		if err := checkSignature(header.Get(HeaderSignature), body, secret); err != nil {
			return nil, eventType, deliveryID, err
		}
	}
	if eventType == "" {
		return nil, eventType, deliveryID, &DeliveryError{Kind: ErrMalformed, Reason: "missing " + HeaderEvent + " header"}
	}
	contentType, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return nil, eventType, deliveryID, &DeliveryError{Kind: ErrMalformed, Reason: "unsupported content type", Err: fmt.Errorf("failed to parse content type: %w", err)}
	}
	// The signature, if any, was checked above on the raw body; here
	// go-github only extracts the JSON payload (raw, or the "payload" field
	// of a form).
	payload, err := gh.ValidatePayloadFromBody(contentType, bytes.NewReader(body), "", nil)
	if err != nil {
		return nil, eventType, deliveryID, &DeliveryError{Kind: ErrMalformed, Reason: "unsupported content type or malformed form", Err: fmt.Errorf("failed to read payload: %w", err)}
	}
	if !json.Valid(payload) {
		return nil, eventType, deliveryID, &DeliveryError{Kind: ErrMalformed, Reason: "malformed JSON payload"}
	}
	if gh.EventForType(eventType) == nil {
		return nil, eventType, deliveryID, &DeliveryError{Kind: ErrUnknownEvent, Reason: "unknown event type"}
	}
	event, err = gh.ParseWebHook(eventType, payload)
	if err != nil {
		return nil, eventType, deliveryID, &DeliveryError{Kind: ErrMalformed, Reason: "payload does not match the event type", Err: fmt.Errorf("failed to parse %s payload: %w", eventType, err)}
	}
	return event, eventType, deliveryID, nil
}

// checkSignature verifies an X-Hub-Signature-256 value with go-github.
func checkSignature(signature string, body, secret []byte) error {
	if signature == "" {
		return &DeliveryError{Kind: ErrBadSignature, Reason: "missing " + HeaderSignature + " header"}
	}
	if !strings.HasPrefix(signature, signaturePrefix) {
		return &DeliveryError{Kind: ErrBadSignature, Reason: "signature is not sha256"}
	}
	if err := gh.ValidateSignature(signature, body, secret); err != nil {
		return &DeliveryError{Kind: ErrBadSignature, Reason: "signature does not match", Err: fmt.Errorf("failed to validate signature: %w", err)}
	}
	return nil
}

// Signature is the X-Hub-Signature-256 value GitHub sends with body: what
// checkSignature accepts. For the sender side (sample deliveries of the
// local run, tests).
func Signature(body, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}
