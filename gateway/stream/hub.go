package stream

import (
	"context"
	"errors"

	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/gateway/netconn"
	"github.com/sluice-dev/sluice/internal/h2ws"
	"github.com/sluice-dev/sluice/schemas"
)

// Hub serves GET /v1/streams/{type}: it is an [http.Handler] for that
// pattern (it reads the path value "type"). Build it with [NewHub], mount
// it, and call [Hub.Shutdown] when the listener stops.
type Hub struct {
	opts    Options
	m       *hubMetrics
	feeds   [3]*feed // by schemas.Kind
	epoch   uint64
	active  atomic.Int64
	clients clientCounts
	wg      sync.WaitGroup
	closing chan struct{}
	stopped chan struct{} // closed when Shutdown has seen every stream end
	once    sync.Once
	stop    sync.Once
}

type hubMetrics struct {
	subscribers         *metrics.Gauge
	received, delivered *metrics.Counter
	conflated, cut      *metrics.Counter
	refused, evicted    *metrics.Counter
	limited             *metrics.Counter
	badSubject, badData *metrics.Counter
	dropped             *metrics.Counter
}

// NewHub builds a Hub; it subscribes to nothing until a subscriber comes.
func NewHub(opts Options) (*Hub, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	h := &Hub{opts: opts, epoch: uint64(time.Now().UnixNano()), closing: make(chan struct{}), stopped: make(chan struct{})}
	h.clients.max = opts.MaxSubscribersPerKey
	ms := opts.Metrics
	h.m = &hubMetrics{
		subscribers: ms.NewGauge(`sluice_stream_subscribers`, func() float64 { return float64(h.active.Load()) }),
		received:    ms.NewCounter(`sluice_stream_events_received_total`),
		delivered:   ms.NewCounter(`sluice_stream_events_delivered_total`),
		conflated:   ms.NewCounter(`sluice_stream_events_conflated_total`),
		cut:         ms.NewCounter(`sluice_stream_slow_consumers_cut_total`),
		refused:     ms.NewCounter(`sluice_stream_subscribers_refused_total`),
		limited:     ms.NewCounter(`sluice_stream_subscribers_limited_total`),
		evicted:     ms.NewCounter(`sluice_stream_cache_evictions_total`),
		badSubject:  ms.NewCounter(`sluice_stream_bad_subjects_total`),
		badData:     ms.NewCounter(`sluice_stream_undecodable_events_total`),
		dropped:     ms.NewCounter(`sluice_stream_nats_dropped_total`),
	}
	for _, k := range schemas.Kinds {
		h.feeds[k] = newFeed(h, k)
	}
	return h, nil
}

// Subscribers returns the number of subscribers being served.
func (h *Hub) Subscribers() int { return int(h.active.Load()) }

// Close starts ending every stream: each gets a final sluice.stream.end
// event (reason shutdown) and is closed; new subscribers get 503. It does
// not wait; see [Hub.Shutdown].
func (h *Hub) Close() { h.once.Do(func() { close(h.closing) }) }

// Shutdown closes the hub and waits until every stream has ended (its
// handler returned and its NATS filters are unsubscribed), or ctx ends;
// then it stops the goroutines that handle NATS messages.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.Close()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		h.stop.Do(func() {
			close(h.stopped)
			for _, f := range h.feeds {
				if f == nil {
					continue
				}
				f.mu.Lock()
				stop := f.stopFollow
				f.mu.Unlock()
				if stop != nil {
					stop() // outside mu: a delivery in flight may wait for it
				}
			}
		})
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %d streams to end: %w", h.active.Load(), ctx.Err())
	}
}

func (h *Hub) closed() bool {
	select {
	case <-h.closing:
		return true
	default:
		return false
	}
}

// ServeHTTP serves one subscription.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && !h2ws.IsRequest(r) {
		w.Header().Set("Allow", "GET")
		writeProblem(w, problemf(http.StatusMethodNotAllowed, "", "use GET"))
		return
	}
	req, err := parseQuery(r.PathValue("type"), r.URL.Query(), r.Header.Get("Last-Event-ID"), h.opts.MaxSymbols)
	if err != nil {
		writeProblem(w, err)
		return
	}
	f := h.feeds[req.kind]
	ws := isWebSocket(r)
	fm := formatSSE
	if !ws {
		if fm, err = negotiate(r.Header.Get("Accept")); err != nil {
			writeProblem(w, err)
			return
		}
	}
	if err := h.admitResume(r.Context(), f, &req); err != nil {
		writeProblem(w, err)
		return
	}
	client := clientOf(r.Context())
	if err := h.acquire(client); err != nil {
		writeProblem(w, err)
		return
	}
	defer h.release(client)
	if f.rep != nil {
		if err := f.follow(r.Context()); err != nil {
			h.opts.Logger.Warn("stream: following the durable stream", "type", f.kind.String(), "err", err)
			writeProblem(w, &StatusError{Status: http.StatusServiceUnavailable, Title: "Stream unavailable",
				Detail: "the durable stream cannot be read: " + err.Error(), RetryAfter: 1})
			return
		}
	}
	q := newQueue(req.kind == schemas.KindQuote, h.opts.Buffer)
	s := &session{hub: h, feed: f, q: q, req: &req}
	switch err := f.register(q, &req); {
	case errors.Is(err, errCatchUp):
		s.fromStream = true
	case err != nil:
		h.opts.Logger.Warn("stream: registering a subscriber", "err", err)
		writeProblem(w, problemf(http.StatusServiceUnavailable, "", err.Error()))
		return
	}
	defer f.unregister(q, &req)
	if undo := h.boundUnsent(r); undo != nil {
		defer undo()
	}
	if ws {
		s.serveWebSocket(w, r)
		return
	}
	s.serveHTTP(w, r, fm)
}

// boundUnsent sets Options.NotSentLowat on the connection of an HTTP/1.1
// stream, which it has to itself while the stream runs, and returns what
// sets the connection's bound before back (nil when nothing was set): an
// HTTP/1.1 connection may carry requests after the stream. An HTTP/2 connection is left alone: it carries other streams and
// publishing, whose writes the bound would cut into small ones, and the
// stream's flow-control window bounds what it holds.
func (h *Hub) boundUnsent(r *http.Request) func() {
	if h.opts.NotSentLowat <= 0 || r.ProtoMajor != 1 {
		return nil
	}
	c := connOf(r.Context())
	if c == nil {
		return nil
	}
	prev, err := netconn.SetNotSentLowat(c, h.opts.NotSentLowat)
	if err != nil {
		h.opts.Logger.Debug("stream: bounding the unsent bytes", "err", err)
		return nil
	}
	// A failure here is a connection already closed.
	return func() { _, _ = netconn.SetNotSentLowat(c, prev) }
}

// admitResume checks a resume's token and, in core mode, refuses it or
// turns it into a snapshot (fallback=snapshot).
func (h *Hub) admitResume(ctx context.Context, f *feed, req *request) error {
	if req.token.Stream != "" && req.token.Stream != f.stream {
		return &StatusError{Status: http.StatusBadRequest, Title: "Foreign resume token",
			Detail: fmt.Sprintf("the resume token is of stream %q, this is %q: resume each stream with its own token", req.token.Stream, f.stream)}
	}
	if !req.resume {
		return nil
	}
	if f.rep != nil {
		return f.admitDurableResume(ctx, req)
	}
	if req.fallback {
		req.snapshot = true
		return nil
	}
	return &StatusError{Status: http.StatusConflict, Title: "Nothing to resume from",
		Detail: "this gateway runs core mode: enriched events are not stored, so Last-Event-ID, since_seq and since cannot be replayed; " +
			"subscribe again without them (the stream starts with a snapshot of the last value of each symbol), or add fallback=snapshot to get that snapshot in place of a resume"}
}

// acquire admits one more stream: 503 while shutting down, 429 when client
// (not empty) already holds Options.MaxSubscribersPerKey streams, 503 past
// Options.MaxSubscribers. An admitted stream holds its slots until
// [Hub.release], which ServeHTTP defers: whichever way the stream ends
// (the peer gone, a write timeout, cut as a slow consumer, shutdown), its
// handler returns and gives them back.
func (h *Hub) acquire(client string) error {
	if h.closed() {
		h.m.refused.Inc()
		return &StatusError{Status: http.StatusServiceUnavailable, Title: "Shutting down",
			Detail: "this gateway is shutting down: subscribe to another one", RetryAfter: 1}
	}
	if client != "" {
		if err := h.clients.acquire(client); err != nil {
			h.m.limited.Inc()
			return err
		}
	}
	if n := h.active.Add(1); n > int64(h.opts.MaxSubscribers) {
		h.active.Add(-1)
		if client != "" {
			h.clients.release(client)
		}
		h.m.refused.Inc()
		return &StatusError{Status: http.StatusServiceUnavailable, Title: "Too many subscribers",
			Detail:     fmt.Sprintf("this gateway serves %d subscribers at most (--stream-max-subscribers): subscribe to another gateway or raise the bound", h.opts.MaxSubscribers),
			RetryAfter: 1}
	}
	h.wg.Add(1)
	return nil
}

func (h *Hub) release(client string) {
	if client != "" {
		h.clients.release(client)
	}
	h.active.Add(-1)
	h.wg.Done()
}

// ClientSubscribers returns the streams the named client (see
// [WithClient]) holds open now.
func (h *Hub) ClientSubscribers(client string) int { return h.clients.count(client) }

// negotiate picks SSE or NDJSON from an Accept header: the first of the two
// it names, SSE when it names neither but accepts anything.
func negotiate(accept string) (format, error) {
	sse := strings.Index(accept, "text/event-stream")
	nd := strings.Index(accept, "application/x-ndjson")
	switch {
	case sse >= 0 && (nd < 0 || sse < nd):
		return formatSSE, nil
	case nd >= 0:
		return formatNDJSON, nil
	case accept == "" || strings.Contains(accept, "*/*"):
		return formatSSE, nil
	}
	return 0, &StatusError{Status: http.StatusNotAcceptable, Title: "Not acceptable",
		Detail: "a stream is served as text/event-stream, application/x-ndjson or a WebSocket upgrade"}
}

// isWebSocket reports whether r asks for a WebSocket: an HTTP/1.1 upgrade,
// or an extended CONNECT over HTTP/2 (RFC 8441).
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || h2ws.IsRequest(r)
}
