package decode

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"

	"github.com/sluice-dev/sluice/schemas"
)

// Media types the data listener accepts.
const (
	mediaJSON     = "application/json"
	mediaNDJSON   = "application/x-ndjson"
	mediaJSONSeq  = "application/json-seq"
	mediaMsgpack  = "application/msgpack"
	mediaXMsgpack = "application/x-msgpack"
	mediaCE       = "application/cloudevents+json"
	mediaCEBatch  = "application/cloudevents-batch+json"
)

// Error is a request body the gateway refuses, with its HTTP status.
type Error struct {
	// Status is the HTTP status of the refusal: 400 malformed, 413 too
	// many events, 415 unsupported media type, 422 a field past its size
	// bound.
	Status int
	// Detail says what is wrong, and where, for the problem's detail.
	Detail string
	// Errors holds the field's failure of a 422, as a worker would
	// report it.
	Errors []schemas.FieldError
}

// Error returns the detail.
func (e *Error) Error() string { return e.Detail }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf(format, args...)}
}

// Body decodes a request body of kind into events appended to dst
// (reused). single reports whether the body held one event rather than a
// collection, which decides the shape of a representation response.
// Strings in the events alias body. A body with an event past one of the
// size bounds of [schemas.CheckSizes] is refused whole, 422.
func Body(kind schemas.Kind, h http.Header, body []byte, maxEvents int, dst []schemas.Event) (events []schemas.Event, single bool, err *Error) {
	events, single, err = decodeEvents(kind, h, body, maxEvents, dst)
	if err == nil {
		err = checkSizes(events, single)
	}
	return events, single, err
}

// checkSizes refuses, 422, the first event with a field past its size
// bound: a field that large is invalid anyway, and could make the event or
// the enriched event too large for one NATS message.
func checkSizes(events []schemas.Event, single bool) *Error {
	for i := range events {
		fe, ok := schemas.CheckSizes(&events[i])
		if ok {
			continue
		}
		detail := fe.Detail
		if !single {
			detail = fmt.Sprintf("event %d: %s", i, fe.Detail)
		}
		return &Error{Status: http.StatusUnprocessableEntity, Detail: detail + "; nothing was published",
			Errors: []schemas.FieldError{fe}}
	}
	return nil
}

func decodeEvents(kind schemas.Kind, h http.Header, body []byte, maxEvents int, dst []schemas.Event) (events []schemas.Event, single bool, err *Error) {
	dst = dst[:0]
	ct := mediaType(h.Get("Content-Type"))
	if h.Get("Ce-Specversion") != "" && ct != mediaCE && ct != mediaCEBatch {
		return decodeBinary(kind, h, ct, body, dst)
	}
	switch ct {
	case mediaJSON, "":
		return decodeJSONCollection(kind, body, maxEvents, dst, false)
	case mediaNDJSON, "application/jsonl":
		return decodeNDJSON(kind, body, maxEvents, dst, '\n')
	case mediaJSONSeq:
		return decodeNDJSON(kind, body, maxEvents, dst, recordSeparator)
	case mediaMsgpack, mediaXMsgpack:
		return decodeMsgpackBody(kind, body, maxEvents, dst)
	case mediaCE:
		dst, ev := grow(dst)
		s := scanner{b: body}
		if e := s.cloudEventJSON(kind, ev); e != nil {
			return dst, true, badRequest("%v", e)
		}
		if e := s.end(); e != nil {
			return dst, true, e
		}
		return dst, true, nil
	case mediaCEBatch:
		return decodeJSONCollection(kind, body, maxEvents, dst, true)
	}
	return dst, false, &Error{Status: http.StatusUnsupportedMediaType,
		Detail: fmt.Sprintf("unsupported Content-Type %q: use application/json, application/x-ndjson, application/msgpack, application/cloudevents+json, application/cloudevents-batch+json, or binary mode (ce-* headers)", ct)}
}

// grow appends a zeroed event to dst and returns a pointer to it.
func grow(dst []schemas.Event) ([]schemas.Event, *schemas.Event) {
	if len(dst) < cap(dst) {
		dst = dst[:len(dst)+1]
		ev := &dst[len(dst)-1]
		*ev = schemas.Event{}
		return dst, ev
	}
	dst = append(dst, schemas.Event{})
	return dst, &dst[len(dst)-1]
}

func (s *scanner) end() *Error {
	s.ws()
	if s.err == nil && s.off < len(s.b) { // not peek: a NUL byte is no end
		s.fail("trailing data after the value")
	}
	if s.err != nil {
		return badRequest("%v", s.err)
	}
	return nil
}

func tooMany(max int) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("more than %d events in one request (flag --max-events)", max)}
}

// decodeJSONCollection decodes one object or an array of objects; ce says
// the objects are CloudEvents (batched mode, which must be an array).
func decodeJSONCollection(kind schemas.Kind, body []byte, maxEvents int, dst []schemas.Event, ce bool) ([]schemas.Event, bool, *Error) {
	s := scanner{b: body}
	switch s.peek() {
	case '{':
		if ce {
			return dst, false, badRequest("application/cloudevents-batch+json takes an array of events")
		}
		dst, ev := grow(dst)
		initPlain(kind, ev)
		s.payloadJSON(kind, ev)
		return dst, true, s.end()
	case '[':
	default:
		return dst, false, badRequest("expected a JSON object or array")
	}
	s.off++
	for first := true; s.more(']', first); first = false {
		if len(dst) >= maxEvents {
			return dst, false, tooMany(maxEvents)
		}
		switch s.peek() {
		case '{':
		case 0:
			s.fail("unexpected end of input")
			return dst, false, s.end()
		default:
			return dst, false, badRequest("element %d (offset %d) is not an object", len(dst), s.off)
		}
		var ev *schemas.Event
		dst, ev = grow(dst)
		if ce {
			if err := s.cloudEventJSON(kind, ev); err != nil {
				return dst, false, badRequest("event %d: %v", len(dst)-1, err)
			}
			continue
		}
		initPlain(kind, ev)
		s.payloadJSON(kind, ev)
	}
	if e := s.end(); e != nil || !ce {
		return dst, false, e
	}
	if i, j, dup := duplicateID(dst); dup {
		return dst, false, badRequest("events %d and %d have the same id %q: the ids of one request must differ", i, j, dst[i].ID)
	}
	return dst, false, nil
}

// duplicateID returns the positions i < j of the first pair of events
// (by j) with the same id. A short batch is compared pair by pair; a
// longer one goes through a hash table from a pool, so that neither
// allocates on a warm gateway.
func duplicateID(events []schemas.Event) (i, j int, dup bool) {
	if len(events) <= 32 {
		for j := 1; j < len(events); j++ {
			for i := 0; i < j; i++ {
				if events[i].ID == events[j].ID {
					return i, j, true
				}
			}
		}
		return 0, 0, false
	}
	size := 64
	for size < 2*len(events) {
		size *= 2
	}
	tp := idTables.Get().(*[]int32)
	defer idTables.Put(tp)
	if cap(*tp) < size {
		*tp = make([]int32, size)
	}
	t := (*tp)[:size]
	for k := range t {
		t[k] = -1
	}
	mask := uint64(size - 1)
	for j := range events {
		id := events[j].ID
		for h := maphash.String(idSeed, id) & mask; ; h = (h + 1) & mask {
			i := t[h]
			if i < 0 {
				t[h] = int32(j)
				break
			}
			if events[i].ID == id {
				return int(i), j, true
			}
		}
	}
	return 0, 0, false
}

var (
	idSeed   = maphash.MakeSeed()
	idTables = sync.Pool{New: func() any { return new([]int32) }}
)

// recordSeparator starts each JSON text of application/json-seq (RFC 7464).
const recordSeparator = 0x1e

// decodeNDJSON decodes one JSON object per line (sep '\n') or per record
// (sep recordSeparator, application/json-seq, where a text may span
// lines); blank lines and empty records are skipped.
func decodeNDJSON(kind schemas.Kind, body []byte, maxEvents int, dst []schemas.Event, sep byte) ([]schemas.Event, bool, *Error) {
	unit := "line"
	if sep == recordSeparator {
		unit = "record"
	}
	line := 0
	if sep == recordSeparator {
		line = -1 // what comes before the first separator is record 0
	}
	for len(body) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(body, sep); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		s := scanner{b: l}
		if s.ws(); s.off == len(l) {
			continue // blank (a NUL byte is not)
		}
		if len(dst) >= maxEvents {
			return dst, false, tooMany(maxEvents)
		}
		var ev *schemas.Event
		dst, ev = grow(dst)
		initPlain(kind, ev)
		if s.peek() != '{' {
			return dst, false, badRequest("%s %d: expected a JSON object", unit, line)
		}
		s.payloadJSON(kind, ev)
		if e := s.end(); e != nil {
			return dst, false, badRequest("%s %d: %s", unit, line, e.Detail)
		}
	}
	if len(dst) == 0 {
		return dst, false, badRequest("empty body")
	}
	return dst, false, nil
}

// decodeMsgpackBody decodes one MessagePack payload map or an array of them.
func decodeMsgpackBody(kind schemas.Kind, body []byte, maxEvents int, dst []schemas.Event) ([]schemas.Event, bool, *Error) {
	r := schemas.NewReader(body)
	c := r.Peek()
	single := c&0xf0 == 0x80 || c == 0xde || c == 0xdf
	n := 1
	if !single {
		n = r.ArrayHeader()
		if r.Err() != nil {
			return dst, false, badRequest("expected a MessagePack map or array: %v", r.Err())
		}
		if n > maxEvents {
			return dst, false, tooMany(maxEvents)
		}
	}
	for i := 0; i < n; i++ {
		var ev *schemas.Event
		dst, ev = grow(dst)
		initPlain(kind, ev)
		if err := decodePayloadMsgpack(kind, &r, ev); err != nil {
			return dst, single, badRequest("event %d: %v", i, err)
		}
	}
	if !r.Done() {
		return dst, single, badRequest("trailing data after the MessagePack value")
	}
	return dst, single, nil
}

func decodePayloadMsgpack(kind schemas.Kind, r *schemas.Reader, ev *schemas.Event) error {
	if kind == schemas.KindQuote {
		return ev.Quote.DecodeMsgpack(r)
	}
	return ev.Trade.DecodeMsgpack(r)
}

// decodeBinary decodes a binary-mode CloudEvent: attributes in ce-*
// headers, data in the body as JSON or MessagePack.
func decodeBinary(kind schemas.Kind, h http.Header, ct string, body []byte, dst []schemas.Event) ([]schemas.Event, bool, *Error) {
	dst, ev := grow(dst)
	if err := binaryAttrs(kind, h, ev); err != nil {
		return dst, true, badRequest("%v", err)
	}
	switch {
	case ct == mediaMsgpack || ct == mediaXMsgpack:
		r := schemas.NewReader(body)
		if err := decodePayloadMsgpack(kind, &r, ev); err != nil {
			return dst, true, badRequest("%v", err)
		}
		if !r.Done() {
			return dst, true, badRequest("trailing data after the MessagePack value")
		}
		return dst, true, nil
	case ct == "" || isJSONMedia(ct):
		s := scanner{b: body}
		if s.peek() != '{' {
			return dst, true, badRequest("binary-mode data must be a JSON object")
		}
		s.payloadJSON(kind, ev)
		return dst, true, s.end()
	}
	return dst, true, &Error{Status: http.StatusUnsupportedMediaType,
		Detail: fmt.Sprintf("binary-mode Content-Type %q: use application/json or application/msgpack", ct)}
}

// initPlain sets the type of an event that came without an envelope.
func initPlain(kind schemas.Kind, ev *schemas.Event) {
	ev.Kind, ev.Known, ev.Type = kind, true, kind.CEType()
}
