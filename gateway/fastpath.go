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
// published (stored, in durable mode) or, for Prefer:
// return=representation, when its results are in (or its deadline
// passed: one timer per pooled exchange). Compressed bodies (gzip, zstd)
// are collected as they come and decompressed in End, on the same
// goroutine, with pooled decoders.
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
	sync    bool   // Prefer: return=representation
	coding  coding // the body's Content-Encoding

	// The answer is given when pending comes to zero: one for each batch
	// holding the request's events, and one for its results (sync),
	// taken by whichever of resultsIn, onTimeout or a batch error first
	// swaps wait from the request's correlation id to zero.
	pending   atomic.Int32
	errMu     sync.Mutex
	err       error // the first batch error
	sent      int64 // when the last batch was handed to NATS, Unix ns
	published int64 // when the last batch was published (stored), Unix ns
	corr      uint64
	wait      atomic.Uint64
	timedOut  bool
	timer     *time.Timer // the results' deadline, made once per pooled exchange
	noPool    bool        // the timer may still run: x is not reused
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
// before any of the body is read. A Content-Encoding other than gzip or
// zstd is 415 once admitted, as on the std server.
func (x *fastExchange) Begin(fs *h2edge.FastStream) (int64, bool) {
	h := x.hdr
	ret := preferredReturn(h)
	s := x.s
	start := fs.Arrived() // the connection's clock read for the burst: no read of our own
	if start.IsZero() {
		start = time.Now()
	}
	x.fs, x.start, x.minimal, x.sync = fs, start, ret == returnMinimal, ret == returnRepresentation
	x.req = http.Request{Method: http.MethodPost, Proto: "HTTP/2.0", ProtoMajor: 2, Header: h,
		RemoteAddr: fs.RemoteAddr(), ContentLength: fs.ContentLength()}
	x.st = getState()
	x.w.reset()
	if s.opts.Tracing != nil {
		x.st.span = s.startRequestSpan(&x.req, x.kind)
	}
	ga := s.admitRequest(&x.w, &x.req, x.kind, x.st, x.start)
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
	x.coding = codingIdentity
	if len(h["Content-Encoding"]) > 0 {
		c, derr := requestCoding(h)
		if derr != nil {
			x.w.hdr["Accept-Encoding"] = acceptEncoding
			fs.DrainBody(s.body.drainBound())
			x.refuse(derr)
			return 0, true
		}
		x.coding = c
	}
	// A compressed body is bounded on the wire by --max-body too (as
	// readCoded bounds it), and once decompressed in End.
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
	var derr *decodeError
	if x.coding == codingIdentity {
		st.body = append(st.body[:0], body...) // the events point into it until answered
	} else {
		st.body, derr = s.body.decodeCoded(&x.req, x.coding, body, st.body)
	}
	bt := s.batchers[x.kind]
	bt.enter()
	// End holds a share of pending while publishBody runs: a results
	// deadline that passes meanwhile (a body slower than --request-timeout)
	// or a batch done before addTraced returns cannot answer and free x
	// under it; the last share answers, End's own or a later one.
	x.pending.Store(1)
	x.err, x.corr, x.timedOut, x.sent, x.published = nil, 0, false, 0, 0
	if status, _ := s.publishBody(&x.w, &x.req, x.kind, bt, st, x.start, x.sync, derr, x); status != 0 {
		if x.corr != 0 { // publishBody gave the slot back
			x.wait.Store(0)
			x.stopTimer()
		}
		s.releaseSlot(x.ga, time.Time{}, false)
		x.respond()
		return
	}
	x.done() // End's share; x may be answered and freed from here on
}

// expect arms the wait for corr's results, before the events go out.
func (x *fastExchange) expect(corr uint64) {
	x.corr = corr
	x.pending.Add(1)
	x.wait.Store(corr)
	x.s.replies.watch(corr, x)
	d := x.s.opts.RequestTimeout - time.Since(x.start)
	if x.timer == nil {
		x.timer = time.AfterFunc(d, x.onTimeout)
	} else {
		x.timer.Reset(d)
	}
}

// claim takes the results' share of pending for the caller if corr is
// still awaited.
func (x *fastExchange) claim(corr uint64) bool {
	return corr != 0 && x.wait.CompareAndSwap(corr, 0)
}

// stopTimer stops the results' deadline; one that fired already may
// still be running, and keeps x out of the pool.
func (x *fastExchange) stopTimer() {
	if !x.timer.Stop() {
		x.noPool = true
	}
}

// resultsIn: every result of corr is in.
func (x *fastExchange) resultsIn(corr uint64) {
	if !x.claim(corr) {
		return
	}
	x.stopTimer()
	x.done()
}

// onTimeout: the request's deadline passed before its results were in.
func (x *fastExchange) onTimeout() {
	if !x.claim(x.wait.Load()) {
		return
	}
	x.timedOut = true
	x.done()
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

func (x *fastExchange) touch() {
	x.pending.Add(1)
}

// batchDone counts one of the request's batches done. A batch refused
// ends a wait for results at once: they will not all come.
func (x *fastExchange) batchDone(err error, sent, done int64) {
	x.errMu.Lock()
	x.sent = max(x.sent, sent)
	if x.err == nil {
		x.err = err
	}
	// The latest batch's time, under the lock: a request's batches (one
	// per partition) finish on different goroutines, and one may finish
	// before the next is even touched.
	x.published = max(x.published, done)
	x.errMu.Unlock()
	if err != nil {
		if corr := x.wait.Load(); x.claim(corr) {
			x.stopTimer()
			x.done()
		}
	}
	x.done()
}

// done counts one share of pending; the last answers, as handleEvents
// does once its waits are over.
func (x *fastExchange) done() {
	if x.pending.Add(-1) != 0 {
		return
	}
	s, st := x.s, x.st
	x.errMu.Lock()
	err, sent, published := x.err, x.sent, x.published
	x.errMu.Unlock()
	if err == nil {
		// As handleEvents times its stages (observeBatches).
		st.published = published
		if sent != 0 {
			s.m.observe(stageBatchWait, st.added, sent)
			s.m.observe(stagePublish, sent, st.published)
		}
	}
	switch {
	case err != nil:
		if x.corr != 0 {
			s.replies.release(x.corr)
		}
		s.fail(&x.w, st, publishProblem(err))
		s.releaseSlot(x.ga, time.Time{}, false)
	case x.corr == 0:
		s.m.accepted[x.kind].Add(len(st.events))
		s.respondAccepted(&x.w, st, x.minimal)
		end := now()
		s.m.observe(stageWrite, st.published, end)
		s.releaseSlot(x.ga, time.Time{}, false)
		s.m.latencyAsync.Update(seconds(end - x.start.UnixNano()))
	default:
		s.m.accepted[x.kind].Add(len(st.events))
		wtr := &s.replies.slots[uint32(x.corr)-1]
		var end int64
		if x.timedOut {
			s.m.timeouts.Inc()
			s.timeout(&x.w, st, wtr)
			end = now()
		} else {
			end = s.answerResults(&x.w, &x.req, st, wtr)
		}
		s.replies.release(x.corr)
		s.releaseSlotRTT(x.ga, time.Duration(end-st.published), x.timedOut)
		s.m.latencySync.Update(seconds(end - x.start.UnixNano()))
	}
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
	if !x.noPool {
		fastPool.Put(x)
	}
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
