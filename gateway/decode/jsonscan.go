package decode

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// scanner is a minimal JSON tokenizer over a byte slice, enough for the flat
// event payloads and CloudEvents envelopes. Strings without escapes alias
// the input; it allocates only to unescape a string that has escapes, and
// for errors. Errors are sticky, as in schemas.Reader.
type scanner struct {
	b   []byte
	off int
	err error
}

var errJSON = errors.New("malformed JSON")

const maxJSONDepth = 64

func (s *scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("%w at offset %d: %s", errJSON, s.off, fmt.Sprintf(format, args...))
	}
	s.off = len(s.b)
}

func (s *scanner) ws() {
	for s.off < len(s.b) {
		switch s.b[s.off] {
		case ' ', '\t', '\n', '\r':
			s.off++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end (or at a NUL byte,
// which no JSON value starts with: check s.off to tell them apart).
func (s *scanner) peek() byte {
	s.ws()
	if s.off >= len(s.b) {
		return 0
	}
	return s.b[s.off]
}

func (s *scanner) expect(c byte) {
	if s.peek() != c {
		s.fail("expected %q", c)
		return
	}
	s.off++
}

// more reports, inside an object or array whose opening bracket was read,
// whether another member follows, consuming the separating comma. first is
// true for the first call.
func (s *scanner) more(close byte, first bool) bool {
	c := s.peek()
	if c == close {
		s.off++
		return false
	}
	if !first {
		if c != ',' {
			s.fail("expected ',' or %q", close)
			return false
		}
		s.off++
	}
	return s.err == nil
}

// str reads a string and returns it; strings without escapes alias the
// input. Invalid UTF-8 becomes U+FFFD, byte by byte, as in encoding/json.
func (s *scanner) str() string {
	if s.peek() != '"' {
		s.fail("expected a string")
		return ""
	}
	s.off++
	start := s.off
	ascii := true
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			p := s.b[start:i]
			if !ascii && !utf8.Valid(p) {
				return s.strSlow(start)
			}
			s.off = i + 1
			return unsafe.String(unsafe.SliceData(p), len(p))
		case c == '\\':
			return s.strSlow(start)
		case c >= utf8.RuneSelf:
			ascii = false
		case c < 0x20:
			s.off = i
			s.fail("control character in string")
			return ""
		}
	}
	s.fail("unterminated string")
	return ""
}

func (s *scanner) strSlow(start int) string {
	out := make([]byte, 0, 32)
	i := start
	for i < len(s.b) {
		c := s.b[i]
		switch {
		case c == '"':
			s.off = i + 1
			if !utf8.Valid(out) {
				return string([]rune(string(out)))
			}
			return string(out)
		case c < 0x20:
			s.off = i
			s.fail("control character in string")
			return ""
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s.b) {
			break
		}
		i++
		switch s.b[i] {
		case '"', '\\', '/':
			out = append(out, s.b[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := s.unicodeEscape(i - 1)
			if n == 0 {
				return ""
			}
			out = utf8.AppendRune(out, r)
			i += n - 2
		default:
			s.off = i
			s.fail("bad escape")
			return ""
		}
		i++
	}
	s.off = len(s.b)
	s.fail("unterminated string")
	return ""
}

// unicodeEscape decodes \uXXXX (and a following low surrogate) at b[i:],
// returning the rune and how many bytes it used, 0 on error.
func (s *scanner) unicodeEscape(i int) (rune, int) {
	hex4 := func(j int) (rune, bool) {
		if j+6 > len(s.b) || s.b[j] != '\\' || s.b[j+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(s.b[j+2:j+6]), 16, 32)
		return rune(v), err == nil
	}
	r, ok := hex4(i)
	if !ok {
		s.off = i
		s.fail("bad \\u escape")
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(i + 6); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12
			}
		}
		return utf8.RuneError, 6
	}
	return r, 6
}

// number returns the bytes of a JSON number, validated.
func (s *scanner) number() []byte {
	s.ws()
	start := s.off
	i := start
	if i < len(s.b) && s.b[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
			i++
		}
		return i - j
	}
	n := digits()
	if n == 0 || (n > 1 && s.b[i-n] == '0') {
		s.fail("bad number")
		return nil
	}
	if i < len(s.b) && s.b[i] == '.' {
		i++
		if digits() == 0 {
			s.fail("bad number")
			return nil
		}
	}
	if i < len(s.b) && (s.b[i] == 'e' || s.b[i] == 'E') {
		i++
		if i < len(s.b) && (s.b[i] == '+' || s.b[i] == '-') {
			i++
		}
		if digits() == 0 {
			s.fail("bad number")
			return nil
		}
	}
	s.off = i
	return s.b[start:i]
}

// isNumberStart reports whether c can start a JSON number.
func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }

// literal consumes true, false or null.
func (s *scanner) literal() {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s.b)-s.off >= len(lit) && string(s.b[s.off:s.off+len(lit)]) == lit {
			s.off += len(lit)
			return
		}
	}
	s.fail("unexpected character")
}

// skip consumes any value.
func (s *scanner) skip(depth int) {
	if depth > maxJSONDepth {
		s.fail("nesting too deep")
		return
	}
	switch c := s.peek(); {
	case c == '"':
		s.str()
	case c == '{':
		s.off++
		for first := true; s.more('}', first); first = false {
			s.str()
			s.expect(':')
			s.skip(depth + 1)
		}
	case c == '[':
		s.off++
		for first := true; s.more(']', first); first = false {
			s.skip(depth + 1)
		}
	case isNumberStart(c):
		s.number()
	case c == 0:
		s.fail("unexpected end of input")
	default:
		s.literal()
	}
}

// raw consumes any value and returns its bytes.
func (s *scanner) raw() []byte {
	s.ws()
	start := s.off
	s.skip(0)
	if s.err != nil {
		return nil
	}
	return s.b[start:s.off]
}

func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
