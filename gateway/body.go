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
// deadline). arrived is when the handler started.
func (br *bodyReader) read(w http.ResponseWriter, r *http.Request, buf []byte, arrived time.Time) ([]byte, *decodeError) {
	if r.ContentLength > br.max {
		return buf, tooLarge(br.max)
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
