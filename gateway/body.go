package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// readBody reads r's body into buf (reused), refusing more than max bytes
// without reading further.
func readBody(r *http.Request, buf []byte, max int64) ([]byte, *decodeError) {
	if r.ContentLength > max {
		return buf, tooLarge(max)
	}
	buf = buf[:0]
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return buf, tooLarge(max)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, badRequest("reading body: %v", err)
		}
	}
}

func tooLarge(max int64) *decodeError {
	return &decodeError{status: http.StatusRequestEntityTooLarge,
		detail: fmt.Sprintf("body larger than %d bytes (flag --max-body)", max)}
}
