package gateway

import (
	"fmt"
	"net/http"

	"github.com/sluice-dev/sluice/gateway/decode"
	"github.com/sluice-dev/sluice/schemas"
)

// Media types of the gateway's answers; the request bodies it accepts are
// package decode's.
const (
	mediaMsgpack = "application/msgpack"
	mediaProblem = "application/problem+json"
)

// decodeError is a request the gateway refuses while reading or decoding
// its body, with its status.
type decodeError struct {
	status int
	detail string
	errs   []schemas.FieldError // the validation failure of a 422
}

func (e *decodeError) Error() string { return e.detail }

func badRequest(format string, args ...any) *decodeError {
	return &decodeError{status: http.StatusBadRequest, detail: fmt.Sprintf(format, args...)}
}

// decodeBody decodes a request body with [decode.Body].
func decodeBody(kind schemas.Kind, h http.Header, body []byte, maxEvents int, dst []schemas.Event) ([]schemas.Event, bool, *decodeError) {
	events, single, err := decode.Body(kind, h, body, maxEvents, dst)
	if err != nil {
		return events, single, &decodeError{status: err.Status, detail: err.Detail, errs: err.Errors}
	}
	return events, single, nil
}
