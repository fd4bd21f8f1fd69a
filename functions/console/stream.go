package console

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"runboat.dev/shared/model"
)

// DefaultKeepAlive is the period of the comment lines that keep an idle
// build events stream open when Options.KeepAlive is zero (runboat's: 15 s).
const DefaultKeepAlive = 15 * time.Second

// reconnectDelay is the delay the stream asks EventSource to wait before it
// connects again, when the response could not be streamed.
const reconnectDelay = 5 * time.Second

// deadlineMargin is how long before the request's deadline (a Lambda's
// timeout) the stream ends, so that it ends cleanly and the client
// reconnects, rather than being cut.
const deadlineMargin = 2 * time.Second

// Events of the build events stream, as runboat's.
const (
	eventUpdated = "upd"
	eventDeleted = "del"
)

// streamEvent is a message of the build events stream: runboat's
// BuildEvent, the build with its null fields.
type streamEvent struct {
	Event string    `json:"event"`
	Build buildJSON `json:"build"`
}

// streamFilter is the filter of a build events stream: the list's, and
// build_name.
type streamFilter struct {
	filter
	name string
}

func (f streamFilter) match(b model.Build) bool {
	return f.filter.match(b) && (f.name == "" || b.Name == f.name)
}

// apiBuildEvents streams the builds as Server-Sent Events, as runboat's
// /api/v1/build-events: an "upd" of every matching build (oldest first), then
// an "upd" or "del" of every change as the API server tells it, and a
// comment line when idle. It is a watch of the builds' Deployments, resumed
// from the snapshot's resourceVersion; it ends when the watch's history is
// gone (410) or the request's deadline nears, and EventSource connects
// again. When the response cannot be streamed (a buffered function URL), the
// snapshot is sent with a reconnection delay and the response ends.
func (h *Handler) apiBuildEvents(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query(), false)
	if err != nil {
		fail(w, r, err)
		return
	}
	sf := streamFilter{filter: f, name: r.URL.Query().Get("build_name")}
	ctx := r.Context()
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-deadlineMargin))
		defer cancel()
	}
	all, rv, err := h.listBuildsAt(ctx, f.repo)
	if err != nil {
		fail(w, r, err)
		return
	}
	snapshot := slices.DeleteFunc(all, func(b buildInfo) bool { return !sf.match(b.Build) })
	slices.SortStableFunc(snapshot, func(a, b buildInfo) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.Name, b.Name))
	})
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // proxies must not buffer it
	w.WriteHeader(http.StatusOK)
	s := &stream{w: w, rc: http.NewResponseController(w), sent: map[string]string{}}
	for _, b := range snapshot {
		if err := s.send(eventUpdated, h.toJSON(b)); err != nil {
			logFrom(ctx).Debug().Err(err).Msg("build events stream closed")
			return
		}
	}
	if err := s.flush(); err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			logFrom(ctx).Debug().Err(err).Msg("build events stream closed")
			return
		}
		// Buffered: the snapshot is all this response can say.
		if _, err := fmt.Fprintf(w, "retry: %d\n\n", reconnectDelay.Milliseconds()); err != nil {
			logFrom(ctx).Debug().Err(err).Msg("build events stream closed")
		}
		return
	}
	if err := h.follow(ctx, s, sf, rv); err != nil {
		logFrom(ctx).Debug().Err(err).Msg("build events stream ended")
	}
}

// follow sends the changes of the builds after resourceVersion rv, until
// ctx ends, the client goes or the watch cannot go on.
func (h *Handler) follow(ctx context.Context, s *stream, f streamFilter, rv string) error {
	deployments := h.opts.Client.AppsV1().Deployments(h.opts.Namespace)
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = model.LabelBuild
			opts.AllowWatchBookmarks = true
			return deployments.Watch(ctx, opts)
		},
	})
	if err != nil {
		return fmt.Errorf("failed to watch builds: %w", err)
	}
	defer rw.Stop()
	keepAlive := h.opts.KeepAlive
	if keepAlive <= 0 {
		keepAlive = DefaultKeepAlive
	}
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rw.Done():
			return errors.New("the watch of builds stopped")
		case <-ping.C:
			if _, err := io.WriteString(s.w, ": ping\n\n"); err != nil {
				return fmt.Errorf("failed to write: %w", err)
			}
		case ev, ok := <-rw.ResultChan():
			if !ok {
				return errors.New("the watch of builds stopped")
			}
			if err := h.relay(ctx, s, f, ev); err != nil {
				return err
			}
		}
		if err := s.flush(); err != nil {
			return err
		}
	}
}

// relay sends what a watch event changes of the matching builds: an "upd"
// when a build's API form changed (a status update of its Deployment that
// changes nothing a client sees is not sent), a "del" when a sent build is
// gone.
func (h *Handler) relay(ctx context.Context, s *stream, f streamFilter, ev watch.Event) error {
	if ev.Type == watch.Error {
		return fmt.Errorf("the watch of builds failed: %w", apierrors.FromObject(ev.Object))
	}
	d, ok := ev.Object.(*appsv1.Deployment)
	if !ok {
		return nil
	}
	b, ok := readableBuild(ctx, d)
	if !ok || !f.match(b.Build) {
		return nil
	}
	if ev.Type == watch.Deleted {
		return s.send(eventDeleted, h.toJSON(b))
	}
	return s.send(eventUpdated, h.toJSON(b))
}

// stream writes Server-Sent Events and remembers what it sent of each build.
type stream struct {
	w    io.Writer
	rc   *http.ResponseController
	sent map[string]string // build name: the data of its last "upd"
}

// send writes an event of a build; an "upd" the same as the last one sent
// for that build is not written again, a "del" only of a build sent.
func (s *stream) send(event string, b buildJSON) error {
	data, err := json.Marshal(streamEvent{Event: event, Build: b})
	if err != nil {
		return fmt.Errorf("failed to encode a build event: %w", err)
	}
	last, known := s.sent[b.Name]
	switch {
	case event == eventDeleted && !known:
		return nil
	case event == eventDeleted:
		delete(s.sent, b.Name)
	default:
		if known && last == string(data) {
			return nil
		}
		s.sent[b.Name] = string(data)
	}
	if _, err := fmt.Fprintf(s.w, "data: %s\n\n", data); err != nil {
		return fmt.Errorf("failed to write: %w", err)
	}
	return nil
}

func (s *stream) flush() error {
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("failed to flush: %w", err)
	}
	return nil
}
