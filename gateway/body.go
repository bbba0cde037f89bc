package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// statusClientClosed counts requests whose client went away (closed the
// connection or reset the stream) before its body was read: nginx's 499.
// Nobody receives the answer; it is counted, not blamed on the request.
const statusClientClosed = 499

// bodyPrealloc is the most readBody allocates up front from a declared
// Content-Length: a client declaring 4 MiB and sending one byte must not
// make the gateway hold 4 MiB (2,000 such clients held 200 MB). Larger
// bodies grow the buffer as their bytes arrive.
const bodyPrealloc = 64 << 10

// bodyReader reads request bodies within the gateway's time bounds.
type bodyReader struct {
	max     int64         // bytes (413 past it)
	timeout time.Duration // from the end of the headers (http.Server.ReadTimeout)
	minRate int64         // bytes/s a large body earns beyond timeout
}

// read reads r's body into buf (reused), refusing more than max bytes
// without reading further. The server's ReadTimeout bounds the whole body
// from the end of the headers; a body that keeps arriving at minRate or
// more gets more time, one second per minRate bytes received, set only
// once it has passed minRate bytes (small bodies never touch the
// deadline). arrived is when the handler started. A body with
// Content-Encoding gzip or zstd is decompressed (readCoded), within the same
// bound; any other coding is 415 with Accept-Encoding.
func (br *bodyReader) read(w http.ResponseWriter, r *http.Request, buf []byte, arrived time.Time) ([]byte, *decodeError) {
	if r.ContentLength > br.max {
		return buf, tooLarge(br.max)
	}
	if _, ok := r.Header["Content-Encoding"]; ok {
		c, derr := requestCoding(r.Header)
		if derr != nil {
			w.Header()["Accept-Encoding"] = acceptEncoding
			return buf, derr
		}
		if c != codingIdentity {
			return br.readCoded(w, r, c, buf, arrived)
		}
	}
	buf = buf[:0]
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, min(r.ContentLength, bodyPrealloc))
	}
	extended := int64(0) // bytes received when the deadline was last moved
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > br.max {
			return buf, tooLarge(br.max)
		}
		if errors.Is(err, io.EOF) {
			if extended > 0 || r.ProtoMajor == 1 {
				// HTTP/1.1: the deadline is the connection's; a request
				// that waits for its result must not be cut by it.
				setReadDeadline(w, time.Time{})
			}
			return buf, nil
		}
		if err != nil {
			return buf, bodyError(r, err, br.timeout)
		}
		if got := int64(len(buf)); br.minRate > 0 && got-extended >= br.minRate {
			extended = got
			setReadDeadline(w, arrived.Add(br.timeout+time.Duration(got/br.minRate+1)*time.Second))
		}
	}
}

// setReadDeadline sets the read deadline of w's request (net/http's
// response writers of both protocols have the method; asserting it, unlike
// http.NewResponseController, allocates nothing).
func setReadDeadline(w http.ResponseWriter, t time.Time) {
	if d, ok := w.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(t)
	}
}

// bodyError classifies a failed body read: the body timeout (408), the
// client gone (499, counted only), or a malformed body (400).
func bodyError(r *http.Request, err error, timeout time.Duration) *decodeError {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &decodeError{status: http.StatusRequestTimeout,
			detail: fmt.Sprintf("the body stalled: it must arrive within %v of the headers, or keep coming at --body-min-rate (flags --body-timeout, --body-min-rate)", timeout)}
	case r.Context().Err() != nil:
		return &decodeError{status: statusClientClosed, detail: "the client went away before its body was read"}
	}
	return badRequest("reading body: %v", err)
}

func tooLarge(max int64) *decodeError {
	return &decodeError{status: http.StatusRequestEntityTooLarge,
		detail: fmt.Sprintf("body larger than %d bytes (flag --max-body)", max)}
}

// The bounds of draining a refused body (drainRefused): at most twice
// --max-body (and at most --max-body + drainMaxBytes) is discarded, a body
// declaring more is not drained at all, for at most drainTime, and only
// while bytes keep coming: a client that stopped sending once it saw the
// answer (Go's, for any status past 299) ends its wait after drainIdle.
const (
	drainMaxBytes = 16 << 20
	drainTime     = 2 * time.Second
	drainIdle     = 100 * time.Millisecond
)

// drainBound is the most of a refused body that is drained.
func (br *bodyReader) drainBound() int64 { return br.max + min(br.max, drainMaxBytes) }

// drainRefused lets an HTTP/2 answer refusing a body (413, 415, 400, 404)
// end its stream normally; admission's refusals do not call it (shedding
// must stay cheap). The answer was written before the body was all
// read; when the handler returns, Go's server ends the stream with
// RST_STREAM(NO_ERROR), which RFC 9113 allows but which some clients take
// for a failure without showing the answer (curl 7.88 exits 92). So the
// answer is flushed at once, then the rest of the body is read and
// discarded through buf (reused; nothing is kept) until it ends, within
// the bounds above: past any of them, or when Content-Length declares
// more, the stream is reset as before. HTTP/1.1 needs none of this:
// net/http discards a little of an unread body itself and otherwise
// answers with Connection: close.
func (br *bodyReader) drainRefused(w http.ResponseWriter, r *http.Request, status int, buf []byte) []byte {
	if r.ProtoMajor != 2 || status < 400 || status == http.StatusRequestTimeout || status == statusClientClosed {
		return buf
	}
	bound := br.drainBound()
	if r.ContentLength > bound {
		return buf
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if cap(buf) < 32<<10 {
		buf = make([]byte, 32<<10)
	}
	scratch := buf[:cap(buf)]
	end := time.Now().Add(drainTime)
	for n := int64(0); n <= bound; {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		deadline := now.Add(drainIdle)
		if deadline.After(end) {
			deadline = end
		}
		setReadDeadline(w, deadline)
		m, err := r.Body.Read(scratch)
		n += int64(m)
		if err != nil {
			break
		}
	}
	return buf[:0]
}
