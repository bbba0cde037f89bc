package gateway

import (
	"net/http"
	"strconv"

	"github.com/sluice-dev/sluice/schemas"
)

// problem is an RFC 9457 problem details answer; every error the data
// listener gives is rendered from one, in one way.
type problem struct {
	Status     int
	Title      string
	Detail     string
	Errors     []schemas.FieldError
	RetryAfter int // seconds; 0 means no Retry-After header
}

func problemTitle(status int) string {
	switch status {
	case http.StatusUnprocessableEntity:
		return "Invalid event"
	case http.StatusGatewayTimeout:
		return "No result before the deadline"
	case http.StatusServiceUnavailable:
		return "Overloaded"
	}
	return http.StatusText(status)
}

// appendJSON renders p as application/problem+json.
func (p *problem) appendJSON(b []byte) []byte {
	title := p.Title
	if title == "" {
		title = problemTitle(p.Status)
	}
	b = append(b, `{"type":"about:blank","title":`...)
	b = schemas.AppendJSONString(b, title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(p.Status), 10)
	if p.Detail != "" {
		b = append(b, `,"detail":`...)
		b = schemas.AppendJSONString(b, p.Detail)
	}
	if p.Errors != nil {
		b = append(b, `,"errors":`...)
		b = appendFieldErrorsJSON(b, p.Errors)
	}
	return append(b, '}')
}

func appendFieldErrorsJSON(b []byte, errs []schemas.FieldError) []byte {
	b = append(b, '[')
	for i, e := range errs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"field":`...)
		b = schemas.AppendJSONString(b, e.Field)
		b = append(b, `,"code":`...)
		b = schemas.AppendJSONString(b, e.Code)
		b = append(b, `,"detail":`...)
		b = schemas.AppendJSONString(b, e.Detail)
		b = append(b, '}')
	}
	return append(b, ']')
}

// writeProblem sends p; buf is scratch space.
func writeProblem(w http.ResponseWriter, p *problem, buf []byte) []byte {
	buf = p.appendJSON(buf[:0])
	h := w.Header()
	h.Set("Content-Type", mediaProblem)
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(buf)
	return buf
}
