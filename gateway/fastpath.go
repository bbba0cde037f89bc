package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/gateway/h2edge"
	"github.com/sluice-dev/sluice/schemas"
)

// fastEvents serves POST /v1/events/{type} on the fast edge
// (gateway/h2edge's FastHandler): the same admission, decoding, batching
// and answers as handleEvents, run on the connection's goroutine without a
// goroutine per request, the answer given when the request's batches are
// published (stored, in durable mode). Requests that wait for their
// results (Prefer: return=representation) and compressed bodies are left
// to handleEvents, through the adapter.
type fastEvents struct{ s *Server }

var _ h2edge.FastHandler = fastEvents{}

// eventsPrefix is the path of the events route before its type.
const eventsPrefix = "/v1/events/"

// Claim takes POST /v1/events/{type} for a known type.
func (f fastEvents) Claim(method, path string) h2edge.FastExchange {
	if method != http.MethodPost || !strings.HasPrefix(path, eventsPrefix) {
		return nil
	}
	name := path[len(eventsPrefix):]
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	kind, ok := schemas.ParseKind(name)
	if !ok {
		return nil // 404 through the adapter
	}
	x := fastPool.Get().(*fastExchange)
	x.s, x.kind = f.s, kind
	return x
}

// fastExchange is one request on the fast path, pooled with its scratch
// space: the header map (values truncated, slices kept), the
// http.Request and ResponseWriter that admission and the answers write
// through.
type fastExchange struct {
	s       *Server
	kind    schemas.Kind
	hdr     http.Header
	req     http.Request
	w       fastWriter
	st      *reqState
	ga      *groupAdmission
	fs      *h2edge.FastStream
	start   time.Time
	minimal bool

	pending atomic.Int32 // batches not yet done
	sent    atomic.Int64 // the latest of its batches' handing to NATS, Unix ns (stage times)
	errMu   sync.Mutex
	err     error // the first batch error
}

var fastPool = sync.Pool{New: func() any {
	return &fastExchange{hdr: make(http.Header), w: fastWriter{hdr: make(http.Header)}}
}}

// maxFastFields bounds the field names a pooled header map keeps.
const maxFastFields = 32

// Header returns the request's header map, emptied.
func (x *fastExchange) Header() http.Header {
	if len(x.hdr) > maxFastFields {
		clear(x.hdr)
	}
	for k, v := range x.hdr {
		x.hdr[k] = v[:0]
	}
	return x.hdr
}

// Begin runs admission on the header: a refusal is answered at once,
// before any of the body is read.
func (x *fastExchange) Begin(fs *h2edge.FastStream) (int64, bool) {
	h := x.hdr
	ret := preferredReturn(h)
	if ret == returnRepresentation || len(h["Content-Encoding"]) > 0 {
		x.free()
		return 0, false
	}
	s := x.s
	x.fs, x.start, x.minimal = fs, time.Now(), ret == returnMinimal
	x.req = http.Request{Method: http.MethodPost, Proto: "HTTP/2.0", ProtoMajor: 2, Header: h,
		RemoteAddr: fs.RemoteAddr(), ContentLength: fs.ContentLength()}
	x.st = getState()
	x.w.reset()
	if s.opts.Tracing != nil {
		x.st.span = s.startRequestSpan(&x.req, x.kind)
	}
	ga := s.admitRequest(&x.w, &x.req, x.kind, x.st)
	if ga == nil {
		x.respond()
		return 0, true
	}
	x.ga = ga
	x.st.admitted = now()
	s.m.observe(stageAdmit, x.start.UnixNano(), x.st.admitted)
	if x.req.ContentLength > s.body.max {
		fs.DrainBody(s.body.drainBound())
		x.refuse(tooLarge(s.body.max))
		return 0, true
	}
	return s.body.max, true
}

// End decodes the body and hands its events to the batcher.
func (x *fastExchange) End(_ *h2edge.FastStream, body []byte, err error) {
	s := x.s
	if err != nil {
		switch {
		case errors.Is(err, h2edge.ErrBodyTooLarge):
			x.fs.DrainBody(s.body.drainBound())
			x.refuse(tooLarge(s.body.max))
		case errors.Is(err, os.ErrDeadlineExceeded):
			x.refuse(&decodeError{status: http.StatusRequestTimeout,
				detail: fmt.Sprintf("the body stalled: it must arrive within %v of the headers, or keep coming at --body-min-rate (flags --body-timeout, --body-min-rate)", s.body.timeout)})
		default:
			x.refuse(badRequest("reading body: %v", err))
		}
		return
	}
	st := x.st
	st.body = append(st.body[:0], body...) // the events point into it until answered
	bt := s.batchers[x.kind]
	bt.enter()
	x.pending.Store(0)
	x.sent.Store(0)
	x.err = nil
	if status, _ := s.publishBody(&x.w, &x.req, x.kind, bt, st, x.start, false, nil, x); status != 0 {
		s.releaseSlot(x.ga, time.Time{}, false)
		x.respond()
	}
}

// refuse answers a decode error after admission.
func (x *fastExchange) refuse(derr *decodeError) {
	x.s.fail(&x.w, x.st, &problem{Status: derr.status, Detail: derr.detail, Errors: derr.errs})
	x.s.releaseSlot(x.ga, time.Time{}, false)
	x.respond()
}

// Abort releases an admitted request whose client went away before its
// body was in (counted as 499, as handleEvents counts it).
func (x *fastExchange) Abort(*h2edge.FastStream) {
	if x.ga != nil {
		x.s.m.status(statusClientClosed)
		x.s.releaseSlot(x.ga, time.Time{}, false)
	}
	x.free()
}

func (x *fastExchange) touch() { x.pending.Add(1) }

// batchDone counts one of the request's batches done; the last answers.
func (x *fastExchange) batchDone(err error, sent int64) {
	storeMax(&x.sent, sent)
	if err != nil {
		x.errMu.Lock()
		if x.err == nil {
			x.err = err
		}
		x.errMu.Unlock()
	}
	if x.pending.Add(-1) != 0 {
		return
	}
	s := x.s
	x.errMu.Lock()
	err = x.err
	x.errMu.Unlock()
	if err != nil {
		s.fail(&x.w, x.st, publishProblem(err))
	} else {
		st := x.st
		st.published = now()
		if sent := x.sent.Load(); sent != 0 {
			s.m.observe(stageBatchWait, st.added, sent)
			s.m.observe(stagePublish, sent, st.published)
		}
		s.m.accepted[x.kind].Add(len(st.events))
		s.respondAccepted(&x.w, st, x.minimal)
		s.m.observe(stageWrite, st.published, now())
		s.m.latencyAsync.UpdateDuration(x.start)
	}
	s.releaseSlot(x.ga, time.Time{}, false)
	x.respond()
}

// respond gives the answer written to x.w and frees x.
func (x *fastExchange) respond() {
	x.fs.Respond(x.w.status, x.w.hdr, x.w.body)
	x.free()
}

func (x *fastExchange) free() {
	if x.st != nil {
		if x.st.span != nil {
			endRequestSpan(x.st, x.w.status)
		}
		putState(x.st)
	}
	x.st, x.ga, x.fs, x.s = nil, nil, nil, nil
	x.req = http.Request{}
	fastPool.Put(x)
}

// fastWriter is the http.ResponseWriter that admission and the answers
// write to on the fast path: the answer is kept, then given to
// FastStream.Respond.
type fastWriter struct {
	hdr    http.Header
	status int
	body   []byte
}

var _ http.ResponseWriter = (*fastWriter)(nil)

func (w *fastWriter) reset() {
	clear(w.hdr)
	w.status, w.body = 0, w.body[:0]
}

func (w *fastWriter) Header() http.Header { return w.hdr }

func (w *fastWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// storeMax raises a to v unless it holds more already.
func storeMax(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}
