package decode

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-dev/sluice/schemas"
)

// cloudEventJSON reads one CloudEvents structured-mode JSON object into ev.
// specversion 1.0, id, source and type are required; data must be a JSON
// object; data_base64 is not supported. Extension attributes are ignored,
// but for the distributed-tracing ones (traceparent, tracestate), which the
// event carries when its traceparent is valid.
func (s *scanner) cloudEventJSON(kind schemas.Kind, ev *schemas.Event) error {
	s.expect('{')
	var hasData bool
	var spec string
	for first := true; s.more('}', first); first = false {
		key := s.str()
		s.expect(':')
		var err error
		switch key {
		case "specversion":
			spec, err = s.attrString(key)
		case "id":
			ev.ID, err = s.attrString(key)
		case "source":
			ev.Source, err = s.attrString(key)
		case "type":
			ev.Type, err = s.attrString(key)
		case "subject":
			ev.Subject, err = s.attrString(key)
		case "dataschema":
			ev.DataSchema, err = s.attrString(key)
		case "traceparent":
			ev.TraceParent, err = s.attrString(key)
		case "tracestate":
			ev.TraceState, err = s.attrString(key)
		case "time":
			if s.peek() == 'n' {
				s.literal()
				break
			}
			v, ok := s.jsonString()
			if !ok {
				return fmt.Errorf("cloudevent attribute time must be an RFC 3339 string")
			}
			t, ok := parseTime(v) // past int64 nanoseconds: saturated, for the worker to call it stale or future
			if !ok && s.err == nil {
				return fmt.Errorf("cloudevent attribute time %q is not RFC 3339", v)
			}
			ev.Time = t
		case "datacontenttype":
			var ct string
			if ct, err = s.attrString(key); err == nil && ct != "" && !isJSONMedia(ct) {
				err = fmt.Errorf("cloudevent datacontenttype %q: structured mode takes JSON data only", ct)
			}
		case "data":
			if s.peek() != '{' {
				return fmt.Errorf("cloudevent data must be a JSON object")
			}
			hasData = true
			// A repeated data member replaces the one before, as in
			// encoding/json.
			ev.Quote, ev.Trade = schemas.Quote{}, schemas.Trade{Conditions: ev.Trade.Conditions[:0]}
			s.payloadJSON(kind, ev)
		case "data_base64":
			return fmt.Errorf("cloudevent data_base64 is not supported: send data as a JSON object")
		default:
			s.skip(1)
		}
		if s.err != nil {
			return s.err
		}
		if err != nil {
			return err
		}
	}
	if s.err != nil {
		return s.err
	}
	if !hasData {
		return fmt.Errorf("cloudevent has no data")
	}
	return checkCloudEvent(kind, ev, spec)
}

// attrString reads a string attribute; null is absent, another type an
// error (the CloudEvents JSON format types every context attribute).
func (s *scanner) attrString(name string) (string, error) {
	switch s.peek() {
	case '"':
		return s.str(), nil
	case 'n':
		s.literal()
		return "", nil
	}
	s.skip(1)
	return "", fmt.Errorf("cloudevent attribute %s must be a string", name)
}

// checkCloudEvent checks the required attributes and that the event's type
// is one of the path's kind, and sets Kind/Known.
func checkCloudEvent(kind schemas.Kind, ev *schemas.Event, spec string) error {
	switch {
	case spec != schemas.SpecVersion:
		return fmt.Errorf("cloudevent specversion %q: want %q", spec, schemas.SpecVersion)
	case ev.ID == "":
		return fmt.Errorf("cloudevent has no id")
	case ev.Source == "":
		return fmt.Errorf("cloudevent has no source")
	case ev.Type == "":
		return fmt.Errorf("cloudevent has no type")
	}
	k, known, ok := schemas.ParseType(ev.Type)
	if !ok || k != kind {
		return fmt.Errorf("cloudevent type %q does not belong on /v1/events/%s (want %s.%s.v<N>)", ev.Type, kind, schemas.Domain, kind)
	}
	ev.Kind, ev.Known = k, known
	ev.KeepValidTrace()
	return nil
}

func isJSONMedia(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// mediaType returns the lower-cased media type of a Content-Type value,
// without parameters, without allocating in the common cases.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(ct)
		}
	}
	return ct
}

// binaryAttrs reads a binary-mode CloudEvent's ce-* headers into ev. A
// binary-mode event has one of each attribute: a header that repeats is an
// error rather than a guess at which one the client meant.
func binaryAttrs(kind schemas.Kind, h http.Header, ev *schemas.Event) error {
	var err error
	one := func(name string) string {
		switch v := h[name]; len(v) {
		case 0:
			return ""
		case 1:
			return v[0]
		default:
			if err == nil {
				low := strings.ToLower(name)
				err = fmt.Errorf("%s appears %d times: a binary-mode event has one %s", low, len(v), low[3:])
			}
			return v[0]
		}
	}
	spec := one("Ce-Specversion")
	ev.ID = one("Ce-Id")
	ev.Source = one("Ce-Source")
	ev.Type = one("Ce-Type")
	ev.Subject = one("Ce-Subject")
	ev.DataSchema = one("Ce-Dataschema")
	ev.TraceParent = one("Ce-Traceparent")
	ev.TraceState = one("Ce-Tracestate")
	tm := one("Ce-Time")
	if err != nil {
		return err
	}
	if tm != "" {
		// Past int64 nanoseconds it saturates, for the worker to call the
		// event stale or future_timestamp.
		t, ok := parseTime(tm)
		if !ok {
			return fmt.Errorf("ce-time %q is not RFC 3339", tm)
		}
		ev.Time = t
	}
	return checkCloudEvent(kind, ev, spec)
}
