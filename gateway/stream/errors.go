package stream

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/sluice-dev/sluice/schemas"
)

// Sentinel errors of the query and token parsers; each is answered 400.
var (
	// ErrBadQuery is a query parameter that cannot be used.
	ErrBadQuery = errors.New("bad query")
	// ErrBadToken is a resume token that does not parse.
	ErrBadToken = errors.New("bad resume token")
	// ErrForeignToken is a resume token of another stream.
	ErrForeignToken = errors.New("resume token of another stream")
	// ErrResumeGone is a resume from a position the durable stream no
	// longer holds (past its age or size limit): answered 410, or by a
	// snapshot with fallback=snapshot.
	ErrResumeGone = errors.New("resume position no longer stored")
)

// StatusError is an error with the HTTP status it is answered with, as
// application/problem+json (the gateway checks keys and permissions in
// front of the hub: see gateway/streams.go).
type StatusError struct {
	Status     int
	Title      string
	Detail     string
	RetryAfter int // seconds; 0: no Retry-After header
}

func (e *StatusError) Error() string { return e.Detail }

func problemf(status int, title, detail string) *StatusError {
	return &StatusError{Status: status, Title: title, Detail: detail}
}

// appendProblem renders e as an RFC 9457 problem details document.
func (e *StatusError) appendJSON(b []byte) []byte {
	title := e.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	b = append(b, `{"type":"about:blank","title":`...)
	b = schemas.AppendJSONString(b, title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	if e.Detail != "" {
		b = append(b, `,"detail":`...)
		b = schemas.AppendJSONString(b, e.Detail)
	}
	return append(b, '}')
}

func writeProblem(w http.ResponseWriter, err error) {
	var se *StatusError
	if !errors.As(err, &se) {
		se = &StatusError{Status: http.StatusInternalServerError, Detail: err.Error()}
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	if se.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(se.RetryAfter))
	}
	w.WriteHeader(se.Status)
	_, _ = w.Write(se.appendJSON(nil))
}
