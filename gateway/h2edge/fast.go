package h2edge

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// FastHandler serves the requests it claims on the connection's own
// goroutine, without a goroutine, an http.Request or an
// http.ResponseWriter per stream (see the package doc, "The fast path").
// Its methods are called with the connection's lock held: they must not
// block, and must not call back into the connection except through
// [FastStream.Respond].
type FastHandler interface {
	// Claim returns the exchange that serves a request with this method
	// and path (the :path field, query included), or nil to leave the
	// request to Options.Handler.
	Claim(method, path string) FastExchange
}

// FastExchange is one request on the fast path. The connection puts the
// request's header fields in Header, then calls Begin; if Begin takes the
// request, the connection collects its body and calls End once, or Abort
// once if the stream ends first. Exactly one answer is given with
// [FastStream.Respond]: in Begin (refusing the request before its body is
// read: then neither End nor Abort follows), in End, or later from any
// goroutine, once, after End.
type FastExchange interface {
	// Header returns the map that the request's fields are added to
	// under their canonical keys. The connection appends to the values it
	// finds there: the exchange truncates them (keeping the slices) or
	// clears the map before handing it out.
	Header() http.Header
	// Begin takes the request once its header is in, and returns the
	// most body bytes it accepts; ok false leaves the request to
	// Options.Handler (the exchange is not used again).
	Begin(fs *FastStream) (maxBody int64, ok bool)
	// End hands over the whole body (valid until End returns), or err
	// instead: [ErrBodyTooLarge] past maxBody, an error matching
	// os.ErrDeadlineExceeded past Options.ReadTimeout.
	End(fs *FastStream, body []byte, err error)
	// Abort says that the stream ended (reset, or the connection closed)
	// before End: the exchange answers nothing.
	Abort(fs *FastStream)
}

// ErrBodyTooLarge is End's error for a body longer than Begin's maxBody.
var ErrBodyTooLarge = errors.New("h2edge: request body too large")

// FastStream is a stream served by a [FastExchange]. Its request
// accessors are valid until End or Abort returns.
type FastStream struct {
	st         stream
	x          FastExchange
	method     string
	path       string
	maxBody    int64
	body       []byte // collected DATA, from bodyPool
	bodyp      *[]byte
	drain      bool  // refused as too large: the rest is read and dropped, within bounds
	drained    int64 // bytes dropped
	drainLimit int64
	drainUntil time.Time // the end of the drain

	arrived  time.Time // when the read burst holding its HEADERS began
	begun    bool      // Begin took the request: the body is collected for End
	ended    bool      // End or Abort called, or answered in Begin
	answered atomic.Bool
	// A FastStream goes back to streamPool once it is both removed from
	// the connection's streams and settled: its answer taken from the
	// queue, or aborted (no answer will come).
	removed bool
	settled bool

	// The answer, copied by Respond (the exchange reuses its own
	// buffers): written by the connection's answer queue.
	status int
	fields []string // name, value pairs, canonical names
	fieldA [8]string
	out    []byte // from bodyPool
	outp   *[]byte
	outOff int // bytes of out sent
}

// Method returns the request's method.
func (fs *FastStream) Method() string { return fs.method }

// Path returns the request's :path.
func (fs *FastStream) Path() string { return fs.path }

// RemoteAddr returns the connection's remote address.
func (fs *FastStream) RemoteAddr() string { return fs.st.cc.remote }

// Arrived returns when the connection's loop began taking in the read
// burst that held the request's HEADERS: the request's arrival, to within
// one burst (the loop reads the clock once a burst, not once a request).
func (fs *FastStream) Arrived() time.Time { return fs.arrived }

// ContentLength returns the request's declared content-length, -1 if
// none.
func (fs *FastStream) ContentLength() int64 { return fs.st.declLen }

// streamPool holds FastStreams done with (see recycle).
var streamPool = sync.Pool{New: func() any { return new(FastStream) }}

// recycle gives fs back to streamPool, unless a timer of its stream may
// still fire (a write deadline, set only while an answer waits for
// window): then the garbage collector takes it.
func recycle(fs *FastStream) {
	if fs.st.timer != nil || fs.st.rtimer != nil {
		return
	}
	fs.release()
	putBuf(fs.bodyp, fs.body)
	*fs = FastStream{}
	streamPool.Put(fs)
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBody keeps large buffers out of bodyPool.
const maxPooledBody = 64 << 10

func getBuf() *[]byte { return bodyPool.Get().(*[]byte) }

func putBuf(p *[]byte, b []byte) {
	if p != nil && cap(b) <= maxPooledBody {
		*p = b[:0]
		bodyPool.Put(p)
	}
}

// Respond answers the stream with status, the fields of h and body (an
// answer with a body gets its content-length). It copies what it needs:
// h and body are the caller's again when it returns. The answer is
// written by the connection's goroutine, or its answer writer, with the
// next burst; on a stream that has ended it is dropped. Only the first
// call counts.
func (fs *FastStream) Respond(status int, h http.Header, body []byte) {
	if fs.answered.Swap(true) {
		return
	}
	fs.status = status
	fs.fields = fs.fieldA[:0]
	for k, vv := range h {
		for _, v := range vv {
			fs.fields = append(fs.fields, k, v)
		}
	}
	if len(body) > 0 {
		fs.outp = getBuf()
		fs.out = append((*fs.outp)[:0], body...)
	}
	fs.st.cc.queueAnswer(fs)
}

// fastQueue holds the answers given from other goroutines until the
// connection's goroutine or its answer writer writes them.
type fastQueue struct {
	mu      sync.Mutex
	q       []*FastStream
	spare   []*FastStream
	wake    chan struct{}
	started bool
}

// queueAnswer queues fs's answer and wakes the answer writer.
func (cc *conn) queueAnswer(fs *FastStream) {
	fq := &cc.fast
	fq.mu.Lock()
	fq.q = append(fq.q, fs)
	if !fq.started {
		fq.started = true
		fq.wake = make(chan struct{}, 1)
		go cc.answerWriter()
	}
	fq.mu.Unlock()
	select {
	case fq.wake <- struct{}{}:
	default:
	}
}

// answerWriter writes the queued answers of a connection whose goroutine
// is waiting for the socket, one burst per wake-up, until the connection
// ends.
func (cc *conn) answerWriter() {
	for {
		select {
		case <-cc.done:
			return
		case <-cc.fast.wake:
		}
		cc.mu.Lock()
		if cc.writeAnswersLocked() && !cc.inBurst {
			cc.flushLocked()
		}
		cc.mu.Unlock()
	}
}

// writeAnswersLocked writes the queued answers; it reports whether it
// wrote any.
func (cc *conn) writeAnswersLocked() bool {
	fq := &cc.fast
	fq.mu.Lock()
	q := fq.q
	fq.q, fq.spare = fq.spare[:0], nil
	fq.mu.Unlock()
	date := "" // one clock read for the answers of a wake-up
	if len(q) > 0 {
		date = httpDate()
	}
	for i, fs := range q {
		cc.writeAnswer(fs, date)
		q[i] = nil
	}
	fq.mu.Lock()
	if fq.spare == nil {
		fq.spare = q[:0]
	}
	fq.mu.Unlock()
	return len(q) > 0
}

// writeAnswer sends fs's answer, dated date: HEADERS, then DATA as the
// windows allow (the rest waits for WINDOW_UPDATE, see sendPending).
func (cc *conn) writeAnswer(fs *FastStream, date string) {
	st := &fs.st
	fs.settled = true
	if st.reset || st.localClosed || cc.closed {
		fs.release()
		if fs.removed {
			recycle(fs)
		}
		return
	}
	fs.ended = true
	st.handlerDone = true
	length := int64(len(fs.out))
	hdrEnd := length == 0
	if err := cc.writeFields(st, fs.status, fs.fields, date, hdrEnd, length); err != nil {
		fs.release()
		return
	}
	if hdrEnd {
		fs.release()
		cc.endLocal(st)
		return
	}
	cc.sendOut(fs)
}

// sendOut sends what is left of fs's answer body as the windows allow.
func (cc *conn) sendOut(fs *FastStream) {
	st := &fs.st
	for fs.outOff < len(fs.out) {
		p := fs.out[fs.outOff:]
		n := min(int64(len(p)), int64(cc.peerMaxFrame), st.sendWindow, cc.sendWindow)
		if n <= 0 {
			st.waiting = true
			if st.timer == nil && cc.opts.WriteTimeout > 0 {
				st.setDeadline(time.Now().Add(cc.opts.WriteTimeout))
			}
			return
		}
		last := int(n) == len(p)
		if err := cc.fr.WriteData(st.id, last, p[:n]); err != nil {
			cc.closeLocked()
			fs.release()
			return
		}
		st.sendWindow -= n
		cc.sendWindow -= n
		fs.outOff += int(n)
	}
	st.waiting = false
	fs.release()
	cc.endLocal(st)
}

// sendPending resumes the answers of fast streams that waited for window.
func (cc *conn) sendPending(st *stream) {
	if st != nil {
		if st.fast != nil && st.waiting && !st.reset && !st.localClosed {
			cc.sendOut(st.fast)
		}
		return
	}
	for _, st := range cc.streams {
		if st.fast != nil && st.waiting && !st.reset && !st.localClosed {
			cc.sendOut(st.fast)
		}
	}
}

// release gives fs's answer buffer back.
func (fs *FastStream) release() {
	putBuf(fs.outp, fs.out)
	fs.out, fs.outp, fs.outOff = nil, nil, 0
}

// writeFields sends an answer's status and fields (name, value pairs), and
// date unless the fields have a Date, as HEADERS and CONTINUATION frames.
// The block without content-length is
// reused from the connection's answerCache when the last answer's was the
// same and made of indexed fields only (the common case: one answer shape
// repeated on a connection).
func (cc *conn) writeFields(st *stream, status int, fields []string, d string, end bool, length int64) error {
	st.answered = true
	c := &cc.acache
	if c.match(cc.hgen, status, d, fields) {
		cc.hbuf.Reset()
		cc.hbuf.Write(c.block)
	} else {
		cc.hbuf.Reset()
		cc.field(":status", statusText(status))
		date := false
		for i := 0; i+1 < len(fields); i += 2 {
			switch fields[i] {
			case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer", "Content-Length":
				continue
			case "Date":
				date = true
			}
			cc.field(cc.lowerName(fields[i]), fields[i+1])
		}
		if !date {
			cc.field("date", d)
		}
		c.store(cc.hgen, status, d, fields, cc.hbuf.Bytes())
	}
	if length > 0 {
		cc.hbuf.Write(appendContentLength(cc.clbuf[:0], length))
	}
	return cc.writeBlock(st, end)
}

// beginFast starts the fast exchange x on a new stream; false: x
// declined, the request goes to the adapter.
func (cc *conn) beginFast(f *http2.MetaHeadersFrame, x FastExchange, method, path string) (bool, error) {
	fs := streamPool.Get().(*FastStream)
	fs.x, fs.method, fs.path, fs.arrived = x, method, path, cc.burstAt
	st := &fs.st
	*st = stream{cc: cc, id: f.StreamID, sendWindow: cc.initSendWin, recvWindow: cc.opts.InitialWindowSize,
		declLen: -1, hasBody: !f.StreamEnded(), fast: fs}
	declLen, err := cc.fastFields(f, x.Header())
	if err != nil {
		x.Abort(fs)
		recycle(fs)
		return true, err
	}
	st.declLen = declLen
	if !st.hasBody {
		if declLen > 0 {
			x.Abort(fs)
			recycle(fs)
			return true, cc.streamErr("content_length_mismatch", st.id, http2.ErrCodeProtocol)
		}
		st.declLen = -1
	}
	maxBody, ok := x.Begin(fs)
	if !ok {
		recycle(fs)
		return false, nil
	}
	fs.maxBody = maxBody
	st.cond.L = &cc.mu
	st.remoteClosed = f.StreamEnded()
	cc.streams[st.id] = st
	if cc.idle != nil && len(cc.streams) == 1 {
		cc.idle.Stop()
	}
	if fs.answered.Load() {
		fs.ended = true
		return true, nil
	}
	fs.begun = true
	if !st.hasBody {
		cc.endFast(fs, nil)
		return true, nil
	}
	if cc.opts.ReadTimeout > 0 {
		st.rdeadline = fs.arrived.Add(cc.opts.ReadTimeout)
		cc.armFastTimer(st.rdeadline)
	}
	return true, nil
}

// fastData takes in a DATA frame's bytes on a fast stream; they are given
// back to the windows at once (the stream's buffer, bounded by maxBody,
// holds them).
func (cc *conn) fastData(fs *FastStream, data []byte) {
	st := &fs.st
	cc.giveBack(st, int32(len(data)))
	if !fs.begun || fs.ended {
		fs.drained += int64(len(data))
		return
	}
	if int64(len(fs.body)+len(data)) > fs.maxBody {
		fs.drained = int64(len(fs.body) + len(data))
		cc.endFast(fs, ErrBodyTooLarge)
		return
	}
	if fs.bodyp == nil {
		fs.bodyp = getBuf()
		fs.body = (*fs.bodyp)[:0]
	}
	fs.body = append(fs.body, data...)
}

// drainTime bounds the drain of a refused body ([FastStream.DrainBody]).
const drainTime = 2 * time.Second

// DrainBody, called in Begin or End before an answer that refuses the
// body, has the rest of the body read and dropped, up to limit bytes in
// all and for at most 2 seconds, instead of the stream being reset
// (RST_STREAM NO_ERROR) at its next DATA, which some clients (curl 7.88)
// take for a failure without showing the answer. A body declaring more
// than limit is reset as before.
func (fs *FastStream) DrainBody(limit int64) {
	if fs.st.declLen > limit || fs.st.remoteClosed {
		return
	}
	fs.drain, fs.drainLimit, fs.drainUntil = true, limit, time.Now().Add(drainTime)
}

// draining reports whether the stream's body is still being drained.
func (fs *FastStream) draining() bool {
	return fs.drain && fs.drained <= fs.drainLimit && time.Now().Before(fs.drainUntil)
}

// endFast hands the body (or err) to the exchange.
func (cc *conn) endFast(fs *FastStream, err error) {
	if fs.ended || !fs.begun {
		return
	}
	fs.ended = true
	body := fs.body
	if err != nil {
		body = nil
	}
	fs.x.End(fs, body, err)
	putBuf(fs.bodyp, fs.body)
	fs.body, fs.bodyp = nil, nil
}

// abortFast tells the exchange of a stream that ended before End.
func (cc *conn) abortFast(fs *FastStream) {
	if fs.ended || !fs.begun {
		return
	}
	fs.ended, fs.settled = true, true
	fs.x.Abort(fs)
	putBuf(fs.bodyp, fs.body)
	fs.body, fs.bodyp = nil, nil
}

// armFastTimer makes the connection's body timer fire by t.
func (cc *conn) armFastTimer(t time.Time) {
	if cc.fastTimer == nil {
		cc.fastAt = t
		cc.fastTimer = time.AfterFunc(time.Until(t), cc.onFastTimer)
		return
	}
	if cc.fastAt.IsZero() || t.Before(cc.fastAt) {
		cc.fastAt = t
		cc.fastTimer.Reset(time.Until(t))
	}
}

// onFastTimer ends the fast streams whose body is late (the exchange
// answers 408) and re-arms for the next.
func (cc *conn) onFastTimer() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed {
		return
	}
	now := time.Now()
	var next time.Time
	cc.fastAt = time.Time{}
	for _, st := range cc.streams {
		fs := st.fast
		if fs == nil || !fs.begun || fs.ended || st.rdeadline.IsZero() {
			continue
		}
		if !now.Before(st.rdeadline) {
			cc.endFast(fs, errReadDeadline)
			continue
		}
		if next.IsZero() || st.rdeadline.Before(next) {
			next = st.rdeadline
		}
	}
	if !next.IsZero() {
		cc.armFastTimer(next)
	}
	if cc.writeAnswersLocked() && !cc.inBurst {
		cc.flushLocked()
	}
}
