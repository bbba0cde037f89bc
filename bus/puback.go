package bus

import (
	"encoding/json"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// pubAck is what a stream answers a publish: the message's place, or the
// stream's refusal. It is the subset of jetstream's pubAckResponse that a
// [Durable] reads; Stream empty and Error nil means an invalid answer.
type pubAck struct {
	Error     *jetstream.APIError `json:"error,omitempty"`
	Stream    string              `json:"stream"`
	Sequence  uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate,omitempty"`
}

// parsePubAck decodes a stream's answer to a publish as encoding/json
// would decode it into [pubAck], and reports false when it is not valid
// JSON of that shape. The server writes its answers as
// {"stream":"S","seq":N,"duplicate":true} or
// {"error":{"code":C,"err_code":E,"description":"D"}}, with no space or
// escape in them: those are read by hand, without reflection and without
// allocating (stream names through intern). Anything else (spaces, escapes,
// nulls, nested values, a key repeated or differing from a known one only
// in case, which encoding/json matches) goes to encoding/json, so the two
// agree on every input (FuzzParsePubAck).
func parsePubAck(data []byte, intern func([]byte) string) (pubAck, bool) {
	if pa, ok := fastPubAck(data, intern); ok {
		return pa, true
	}
	var pa pubAck
	if err := json.Unmarshal(data, &pa); err != nil {
		return pubAck{}, false
	}
	return pa, true
}

// Keys of a pub-ack, as bits of a seen set.
const (
	keyStream = 1 << iota
	keySeq
	keyDuplicate
	keyError
	keyCode
	keyErrCode
	keyDescription
)

// ackScanner reads the strict form of a pub-ack; every method returns
// false on anything outside it.
type ackScanner struct {
	b    []byte
	i    int
	seen int
}

// fastPubAck reads the server's own form of a pub-ack; false means "not
// that form", not "invalid".
func fastPubAck(data []byte, intern func([]byte) string) (pa pubAck, ok bool) {
	s := ackScanner{b: data}
	ok = s.object(func(key []byte) bool {
		switch {
		case string(key) == "stream":
			v, ok := s.str(keyStream)
			if ok {
				pa.Stream = intern(v)
			}
			return ok
		case string(key) == "seq":
			return s.uint(keySeq, ^uint64(0), &pa.Sequence)
		case string(key) == "duplicate":
			return s.boolean(keyDuplicate, &pa.Duplicate)
		case string(key) == "error":
			if !s.mark(keyError) {
				return false
			}
			pa.Error = new(jetstream.APIError)
			return s.apiError(pa.Error)
		}
		return s.other(key, "stream", "seq", "duplicate", "error")
	})
	return pa, ok && s.i == len(s.b)
}

func (s *ackScanner) apiError(e *jetstream.APIError) bool {
	return s.object(func(key []byte) bool {
		switch {
		case string(key) == "code":
			var v uint64
			ok := s.uint(keyCode, 1<<31-1, &v)
			e.Code = int(v)
			return ok
		case string(key) == "err_code":
			var v uint64
			ok := s.uint(keyErrCode, 1<<16-1, &v)
			e.ErrorCode = jetstream.ErrorCode(v)
			return ok
		case string(key) == "description":
			v, ok := s.str(keyDescription)
			e.Description = string(v)
			return ok
		}
		return s.other(key, "code", "err_code", "description")
	})
}

// object reads {"key":value,...}, calling value for each key with the
// scanner on the value.
func (s *ackScanner) object(value func(key []byte) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		key, ok := s.rawString()
		if !ok || !s.byte(':') || !value(key) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// mark records key as seen; false when it was already (the fast path
// leaves a repeated key, merged by encoding/json, to encoding/json).
func (s *ackScanner) mark(key int) bool {
	if s.seen&key != 0 {
		return false
	}
	s.seen |= key
	return true
}

// other skips the value of a key that is none of known: a string without
// escape, an unsigned integer or a boolean. A key that encoding/json would
// match to a known one (it ignores case) is not skipped.
func (s *ackScanner) other(key []byte, known ...string) bool {
	for _, k := range known {
		if strings.EqualFold(string(key), k) {
			return false
		}
	}
	if _, ok := s.rawString(); ok {
		return true
	}
	var v uint64
	var b bool
	return s.number(^uint64(0), &v) || s.literal(&b)
}

func (s *ackScanner) str(key int) ([]byte, bool) {
	if !s.mark(key) {
		return nil, false
	}
	return s.rawString()
}

func (s *ackScanner) uint(key int, max uint64, v *uint64) bool {
	return s.mark(key) && s.number(max, v)
}

func (s *ackScanner) boolean(key int, v *bool) bool {
	return s.mark(key) && s.literal(v)
}

func (s *ackScanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// rawString reads a string of printable ASCII with no escape; on
// anything else it reads nothing.
func (s *ackScanner) rawString() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[s.i+1 : j]
			s.i = j + 1
			return v, true
		case c < 0x20 || c == '\\' || c >= 0x7f:
			return nil, false
		}
	}
	return nil, false
}

// number reads an unsigned integer without leading zero, at most max.
func (s *ackScanner) number(max uint64, v *uint64) bool {
	j := s.i
	var n uint64
	for ; j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9'; j++ {
		d := uint64(s.b[j] - '0')
		if n > (max-d)/10 {
			return false
		}
		n = n*10 + d
	}
	if j == s.i || j-s.i > 1 && s.b[s.i] == '0' {
		return false
	}
	if j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return false
	}
	s.i, *v = j, n
	return true
}

func (s *ackScanner) literal(v *bool) bool {
	rest := s.b[s.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.i += 4
		*v = true
		return true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.i += 5
		*v = false
		return true
	}
	return false
}
