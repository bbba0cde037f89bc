package ops

import (
	_ "embed"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// The live dashboard: GET / serves one self-contained page (dashboard.html:
// inline CSS, vanilla JavaScript, charts drawn as inline SVG, no external
// asset), and GET /dashboard/events feeds it one frame a second as
// server-sent events. One sampler serves every open page: it starts with the
// first subscriber and stops with the last, so a process nobody watches
// does no work for the page at all.

//go:embed dashboard.html
var dashboardPage []byte

const (
	// DefaultDashboardClients bounds the dashboard pages open at once when
	// [ServerOptions].DashboardClients is 0.
	DefaultDashboardClients = 8
	// dashboardInterval is the time between two frames.
	dashboardInterval = time.Second
	// dashboardWriteTimeout bounds each write to a page: a page that does
	// not read its frames for that long is cut.
	dashboardWriteTimeout = 5 * time.Second
)

// dashboard fans the sampler's frames out to the open pages.
type dashboard struct {
	max    int
	log    *slog.Logger
	newSP  func() *sampler
	every  time.Duration
	wait   time.Duration // the write deadline, dashboardWriteTimeout
	mu     sync.Mutex    // guards everything below
	subs   map[chan []byte]struct{}
	last   []byte        // the latest frame, sent to a page as it opens
	stop   chan struct{} // closed to stop the running sampler; nil when none runs
	closed bool
	done   chan struct{} // closed by close: every feed ends
}

func newDashboard(max int, log *slog.Logger, extra func(io.Writer), sets []*metrics.Set) *dashboard {
	return &dashboard{
		max:   max,
		log:   log,
		every: dashboardInterval,
		wait:  dashboardWriteTimeout,
		newSP: func() *sampler { return &sampler{extra: extra, sets: sets} },
		subs:  make(map[chan []byte]struct{}),
		done:  make(chan struct{}),
	}
}

// subscribe adds a page; ok is false when the bound is reached or the
// server is shutting down. The first subscriber starts the sampler.
func (d *dashboard) subscribe() (ch chan []byte, last []byte, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || len(d.subs) >= d.max {
		return nil, nil, false
	}
	ch = make(chan []byte, 1)
	d.subs[ch] = struct{}{}
	if d.stop == nil {
		d.stop = make(chan struct{})
		d.last = nil // stale: rates would span the idle time
		go d.run(d.stop)
	}
	return ch, d.last, true
}

// unsubscribe removes a page; the last one out stops the sampler.
func (d *dashboard) unsubscribe(ch chan []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.subs, ch)
	if len(d.subs) == 0 && d.stop != nil {
		close(d.stop)
		d.stop = nil
	}
}

// subscribers returns the number of open pages.
func (d *dashboard) subscribers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.subs)
}

// close ends every feed and refuses new ones; the server calls it as it
// shuts down, so that open pages do not hold Shutdown until its deadline.
func (d *dashboard) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	close(d.done)
	if d.stop != nil {
		close(d.stop)
		d.stop = nil
	}
}

// run samples once at once and then every d.every until stop is closed,
// and hands each frame to every subscriber (replacing a frame it has not
// taken yet: a slow page skips frames, it never queues them).
func (d *dashboard) run(stop chan struct{}) {
	sp := d.newSP()
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		b, err := sp.next(time.Now())
		if err != nil {
			d.log.Warn("dashboard sample", "err", err)
		} else {
			d.publish(stop, b)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (d *dashboard) publish(stop chan struct{}, b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stop != stop { // stopped meanwhile; a newer sampler may run
		return
	}
	d.last = b
	for ch := range d.subs {
		select {
		case <-ch:
		default:
		}
		ch <- b
	}
}

// handlePage serves the page itself.
func (d *dashboard) handlePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(dashboardPage)
}

// handleEvents is the page's feed: "event: frame" server-sent events, one a
// second, until the page goes, a write stalls past dashboardWriteTimeout, or
// the server shuts down.
func (d *dashboard) handleEvents(w http.ResponseWriter, r *http.Request) {
	ch, last, ok := d.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "dashboard: too many open pages (raise --ops-dashboard-clients) or shutting down", http.StatusServiceUnavailable)
		return
	}
	defer d.unsubscribe(ch)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !d.write(w, rc, []byte("retry: 2000\n\n")) {
		return
	}
	if last != nil && !d.writeFrame(w, rc, last) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		case b := <-ch:
			if !d.writeFrame(w, rc, b) {
				return
			}
		}
	}
}

func (d *dashboard) writeFrame(w io.Writer, rc *http.ResponseController, b []byte) bool {
	msg := make([]byte, 0, len(b)+len("event: frame\ndata: \n\n"))
	msg = append(msg, "event: frame\ndata: "...)
	msg = append(msg, b...) // JSON from encoding/json holds no newline
	msg = append(msg, "\n\n"...)
	return d.write(w, rc, msg)
}

// write writes b within d.wait and flushes it.
func (d *dashboard) write(w io.Writer, rc *http.ResponseController, b []byte) bool {
	if err := rc.SetWriteDeadline(time.Now().Add(d.wait)); err != nil {
		d.log.Debug("dashboard write deadline", "err", err)
	}
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}
