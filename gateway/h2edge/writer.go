package h2edge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bufferSize is the answer bytes a responseWriter holds before it sends
// them as DATA (Flush and the handler's return send them sooner).
const bufferSize = 16 << 10

// responseWriter is the http.ResponseWriter of one stream: its header is
// sent with the first Flush, the first write past bufferSize, or the
// handler's return (then with content-length and, for a short answer,
// END_STREAM on the one DATA frame).
type responseWriter struct {
	st          *stream
	req         *http.Request
	hdr         http.Header
	status      int
	wroteHeader bool   // WriteHeader called (or implied)
	sentHeader  bool   // HEADERS sent
	buf         []byte // from bufPool once written to
	bufp        *[]byte
	written     int64
}

// bufPool holds the answer buffers of responseWriters, given back when
// their answer ends.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufferSize); return &b }}

// grab takes a buffer from bufPool if w has none.
func (w *responseWriter) grab() {
	if w.bufp == nil {
		w.bufp = bufPool.Get().(*[]byte)
		w.buf = (*w.bufp)[:0]
	}
}

// release gives w's buffer back to bufPool.
func (w *responseWriter) release() {
	if w.bufp != nil && cap(w.buf) == bufferSize {
		*w.bufp = w.buf[:0]
		bufPool.Put(w.bufp)
	}
	w.buf, w.bufp = nil, nil
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
)

// Header returns the answer's header, sent with the first DATA.
func (w *responseWriter) Header() http.Header {
	if w.hdr == nil {
		w.hdr = make(http.Header)
	}
	return w.hdr
}

// WriteHeader sets the status; 1xx answers other than 101 are sent at once.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		cc := w.st.cc
		cc.mu.Lock()
		if !w.st.reset && !cc.closed {
			_ = cc.writeHeaderBlock(w.st, code, w.hdr, false, -1)
			if !cc.inBurst {
				cc.flushLocked()
			}
		}
		cc.mu.Unlock()
		return
	}
	if code < 100 || code > 999 {
		panic("h2edge: invalid WriteHeader code " + strconv.Itoa(code))
	}
	w.wroteHeader, w.status = true, code
}

func (w *responseWriter) bodyAllowed() bool {
	return w.req.Method != http.MethodHead && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

// Write buffers p and sends DATA past bufferSize, as the peer's windows
// allow; it fails once the stream or the connection ended.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if len(w.buf) == 0 && len(p) >= bufferSize {
		// Nothing held: send p itself.
		return len(p), w.send(p, false)
	}
	w.grab()
	w.buf = append(w.buf, p...)
	w.written += int64(len(p))
	if len(w.buf) >= bufferSize {
		return len(p), w.send(nil, false)
	}
	return len(p), nil
}

// WriteString is Write without a copy to []byte.
func (w *responseWriter) WriteString(s string) (int, error) {
	if len(s) < bufferSize {
		if !w.wroteHeader {
			w.WriteHeader(http.StatusOK)
		}
		if w.bodyAllowed() {
			w.grab()
			w.buf = append(w.buf, s...)
			w.written += int64(len(s))
			return len(s), nil
		}
	}
	return w.Write([]byte(s))
}

// Flush sends the header and what is buffered.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush with the error (for http.ResponseController).
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.send(nil, false)
}

// SetWriteDeadline resets the stream at t if its answer is not sent by
// then (zero: no deadline), for http.ResponseController.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	cc := w.st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if w.st.reset {
		return errStreamClosed
	}
	w.st.setDeadline(t)
	return nil
}

// SetReadDeadline makes body reads that wait past t fail with
// os.ErrDeadlineExceeded (zero: no deadline), for
// http.ResponseController.
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	cc := w.st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	w.st.setReadDeadline(t)
	return nil
}

// EnableFullDuplex is accepted: HTTP/2 streams are always full duplex.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// Hijack is refused: an HTTP/2 stream has no connection of its own.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("h2edge: Hijack on an HTTP/2 stream")
}

// send writes the header if not yet sent, the buffer, then p, and ends
// the stream when end is set.
func (w *responseWriter) send(p []byte, end bool) error {
	cc := w.st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	err := w.sendLocked(p, end)
	if !cc.inBurst {
		cc.flushLocked()
	}
	return err
}

func (w *responseWriter) sendLocked(p []byte, end bool) error {
	st, cc := w.st, w.st.cc
	if st.reset || st.localClosed {
		return errStreamClosed
	}
	if cc.closed {
		return errConnClosed
	}
	if !w.sentHeader {
		if !w.wroteHeader {
			w.wroteHeader, w.status = true, http.StatusOK
		}
		length := int64(-1)
		if end && w.bodyAllowed() && w.hdr.Get("Content-Length") == "" && len(p) == 0 {
			length = int64(len(w.buf))
		}
		body := w.buf
		if len(body) == 0 {
			body = p
		}
		if w.hdr == nil || w.hdr["Content-Type"] == nil {
			if len(body) > 0 && w.bodyAllowed() {
				w.Header()["Content-Type"] = []string{http.DetectContentType(body)}
			}
		}
		w.sentHeader = true
		headerEnd := end && len(w.buf) == 0 && len(p) == 0
		if err := cc.writeHeaderBlock(st, w.status, w.hdr, headerEnd, length); err != nil {
			return err
		}
		if headerEnd {
			cc.endLocal(st)
			return nil
		}
	}
	if len(w.buf) > 0 {
		if err := cc.writeData(st, w.buf, end && len(p) == 0); err != nil {
			return err
		}
		w.buf = w.buf[:0]
		if end && len(p) == 0 {
			return nil
		}
	}
	if len(p) > 0 || end {
		return cc.writeData(st, p, end)
	}
	return nil
}

// finishLocked ends the answer when the handler returns.
func (w *responseWriter) finishLocked() {
	st := w.st
	if st.reset || st.localClosed || st.cc.closed {
		return
	}
	_ = w.sendLocked(nil, true)
	w.release()
}

// writeData sends p as DATA frames as the windows allow, waiting for the
// peer's WINDOW_UPDATE when they are empty; end sets END_STREAM on the
// last.
func (cc *conn) writeData(st *stream, p []byte, end bool) error {
	for {
		if st.reset || st.localClosed {
			return errStreamClosed
		}
		if cc.closed {
			return errConnClosed
		}
		n := int64(0) // an empty DATA frame (END_STREAM) takes no window
		if len(p) > 0 {
			n = min(int64(len(p)), int64(cc.peerMaxFrame), st.sendWindow, cc.sendWindow)
		}
		if n <= 0 && len(p) > 0 {
			if !cc.inBurst {
				cc.flushLocked()
			}
			st.waiting = true
			st.cond.Wait()
			st.waiting = false
			continue
		}
		last := end && int(n) == len(p)
		if err := cc.fr.WriteData(st.id, last, p[:n]); err != nil {
			cc.closeLocked()
			return errConnClosed
		}
		st.sendWindow -= n
		cc.sendWindow -= n
		p = p[n:]
		if last {
			cc.endLocal(st)
			return nil
		}
		if len(p) == 0 {
			return nil
		}
	}
}

// endLocal takes in our END_STREAM.
func (cc *conn) endLocal(st *stream) {
	st.localClosed = true
	if st.timer != nil {
		st.timer.Stop()
	}
	if !st.remoteClosed {
		if !st.handlerDone {
			return // the handler may still read its body
		}
		// Answered, the client still sending: it is told to stop
		// (RST_STREAM NO_ERROR, RFC 9113, 8.1) when its next DATA comes,
		// or when the stream's slot is wanted (see abandoned); until then
		// the stream stays open to the peer's other frames.
		return
	}
	cc.removeStream(st)
}

// writeHeaderBlock sends the status and header as HEADERS and
// CONTINUATION frames.
func (cc *conn) writeHeaderBlock(st *stream, status int, h http.Header, end bool, length int64) error {
	cc.hbuf.Reset()
	cc.field(":status", statusText(status))
	if status >= 200 {
		st.answered = true
	}
	for k, vv := range h {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer":
			continue
		}
		name := cc.lowerName(k)
		for _, v := range vv {
			cc.field(name, v)
		}
	}
	if status >= 200 {
		if h["Date"] == nil {
			cc.field("date", httpDate())
		}
		if length >= 0 {
			cc.field("content-length", strconv.FormatInt(length, 10))
		}
	}
	return cc.writeBlock(st, end)
}

// writeBlock sends the header block in hbuf as HEADERS and CONTINUATION
// frames.
func (cc *conn) writeBlock(st *stream, end bool) error {
	block := cc.hbuf.Bytes()
	first := block
	if len(first) > cc.peerMaxFrame {
		first = block[:cc.peerMaxFrame]
	}
	rest := block[len(first):]
	err := cc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: st.id, BlockFragment: first,
		EndStream: end, EndHeaders: len(rest) == 0})
	for err == nil && len(rest) > 0 {
		chunk := rest[:min(len(rest), cc.peerMaxFrame)]
		rest = rest[len(chunk):]
		err = cc.fr.WriteContinuation(st.id, len(rest) == 0, chunk)
	}
	if err != nil {
		cc.closeLocked()
		return errConnClosed
	}
	return nil
}

// field encodes one field into hbuf; it moves hgen on, since the field
// may have been added to the dynamic table.
func (cc *conn) field(name, value string) {
	cc.hgen++
	_ = cc.henc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

var statusTexts = func() (t [600]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

type dateCache struct {
	sec int64
	s   string
}

var date atomic.Pointer[dateCache]

// httpDate is the Date field, formatted once a second.
func httpDate() string {
	now := time.Now()
	if d := date.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &dateCache{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	date.Store(d)
	return d.s
}

// errReadDeadline is the read error of a body past its read deadline.
var errReadDeadline = fmt.Errorf("h2edge: reading the request body: %w", os.ErrDeadlineExceeded)

// requestBody is a request's body: the DATA the loop collected, given
// back to the peer's windows as the handler reads it.
type requestBody struct {
	st *stream
}

// Read reads body bytes, waiting for DATA.
func (b *requestBody) Read(p []byte) (int, error) {
	st := b.st
	cc := st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for {
		if st.bodyClosed {
			return 0, errors.New("h2edge: read on closed body")
		}
		if n := len(st.body) - st.bodyOff; n > 0 {
			k := copy(p, st.body[st.bodyOff:])
			st.bodyOff += k
			if st.bodyOff == len(st.body) {
				st.body, st.bodyOff = st.body[:0], 0
			}
			cc.giveBack(st, int32(k))
			if !cc.inBurst {
				cc.flushLocked()
			}
			return k, nil
		}
		if st.bodyErr != nil {
			return 0, st.bodyErr
		}
		if st.bodyEOF {
			return 0, io.EOF
		}
		if st.rexpired {
			return 0, errReadDeadline
		}
		if len(p) == 0 {
			return 0, nil
		}
		st.cond.Wait()
	}
}

// Close drops what is unread; later DATA is given back unread.
func (b *requestBody) Close() error {
	st := b.st
	cc := st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if st.bodyClosed {
		return nil
	}
	st.bodyClosed = true
	if n := int32(len(st.body) - st.bodyOff); n > 0 {
		st.body, st.bodyOff = nil, 0
		cc.giveBack(nil, n)
		if !cc.inBurst {
			cc.flushLocked()
		}
	}
	return nil
}
