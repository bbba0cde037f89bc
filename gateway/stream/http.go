package stream

import (
	"net/http"
	"time"
)

// httpTransport writes SSE or NDJSON as one streamed response body.
type httpTransport struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	r       *http.Request
	timeout time.Duration
	ka      []byte
}

var (
	sseKeepAlive    = []byte(": keep-alive\n\n")
	ndjsonKeepAlive = []byte("\n")
)

func (s *session) serveHTTP(w http.ResponseWriter, r *http.Request, fm format) {
	s.fm = fm
	rc := http.NewResponseController(w)
	// The server's read timeout covers headers and body; on HTTP/1.1 it
	// would end a long stream's context when it fires.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	tr := &httpTransport{w: w, rc: rc, r: r, timeout: s.hub.opts.WriteTimeout, ka: ndjsonKeepAlive}
	if fm == formatSSE {
		h.Set("Content-Type", "text/event-stream")
		tr.ka = sseKeepAlive
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if tr.write(nil, nil) != nil {
		return
	}
	s.run(tr)
}

// write sends buf and flushes it, within the write timeout: a peer that
// stops reading (or, over HTTP/2, never opens its flow-control window)
// fails the write rather than hold this goroutine. Between writes there is
// no deadline (the server's WriteTimeout would otherwise reset an idle
// HTTP/2 stream).
func (t *httpTransport) write(buf []byte, _ []int) error {
	_ = t.rc.SetWriteDeadline(time.Now().Add(t.timeout))
	var err error
	if len(buf) > 0 {
		_, err = t.w.Write(buf)
	}
	if err == nil {
		err = t.rc.Flush()
	}
	_ = t.rc.SetWriteDeadline(time.Time{})
	return err
}

func (t *httpTransport) keepAlive() error { return t.write(t.ka, nil) }

func (t *httpTransport) gone() <-chan struct{} { return t.r.Context().Done() }

func (t *httpTransport) end(buf []byte, _ string) error { return t.write(buf, nil) }
