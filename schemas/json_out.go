package schemas

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendEventJSON transcodes a MessagePack CloudEvent (an event, an enriched
// event or any map) into the CloudEvents JSON format: datacontenttype becomes
// application/json, timestamps (the timestamp extension, and the integer
// Unix-nanosecond fields ts, received_at and enriched_at of data) become RFC
// 3339 strings with nanoseconds, and everything else maps one to one. It does
// not allocate beyond growing b.
func AppendEventJSON(b []byte, raw []byte) ([]byte, error) {
	r := NewReader(raw)
	b = appendJSONValue(b, &r, "", 0)
	if r.err != nil {
		return b, fmt.Errorf("transcoding event to JSON: %w", r.err)
	}
	return b, nil
}

const maxJSONDepth = 64

func isTimeKey(k string) bool { return k == "ts" || k == "received_at" || k == "enriched_at" }

func appendJSONValue(b []byte, r *Reader, key string, depth int) []byte {
	if depth > maxJSONDepth {
		r.fail(fmt.Errorf("%w: nesting deeper than %d", ErrFrame, maxJSONDepth))
		return b
	}
	c := r.Peek()
	switch {
	case r.err != nil || r.Done():
		r.fail(ErrShortBuffer)
		return b
	case c == 0xc0:
		r.off++
		return append(b, "null"...)
	case c == 0xc2 || c == 0xc3:
		return strconv.AppendBool(b, r.Bool())
	case c == 0xca:
		return appendJSONFloat(b, r.Float64(), 32)
	case c == 0xcb:
		return appendJSONFloat(b, r.Float64(), 64)
	case isInt(c):
		if isTimeKey(key) {
			return appendJSONTime(b, r.Int64())
		}
		if c == 0xcf {
			return strconv.AppendUint(b, r.Uint64(), 10)
		}
		return strconv.AppendInt(b, r.Int64(), 10)
	case c == 0xd6 || c == 0xd7 || (c == 0xc7 && len(r.b) > r.off+2 && r.b[r.off+2] == 0xff):
		return appendJSONTime(b, r.Timestamp())
	case r.IsString() || c == 0xc4 || c == 0xc5 || c == 0xc6:
		s := r.String()
		if key == "datacontenttype" && s == ContentTypeMsgpack {
			s = "application/json"
		}
		return AppendJSONString(b, s)
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		n := r.ArrayHeader()
		b = append(b, '[')
		for i := 0; i < n && r.err == nil; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONValue(b, r, "", depth+1)
		}
		return append(b, ']')
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		n := r.MapHeader()
		b = append(b, '{')
		for i := 0; i < n && r.err == nil; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			switch {
			case r.Done():
				r.fail(ErrShortBuffer)
				return b
			case !r.IsString():
				r.fail(fmt.Errorf("%w: map key is not a string", ErrType))
				return b
			}
			k := r.String()
			b = AppendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONValue(b, r, k, depth+1)
		}
		return append(b, '}')
	}
	r.fail(typeError("JSON-compatible value", c))
	return b
}

// appendJSONFloat formats f as encoding/json does (as ECMAScript does:
// exponent form only below 1e-6 and from 1e21), with the shortest digits
// that read back as the same float of the given bit size; NaN and the
// infinities, which JSON cannot hold, become null.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 to e-9, as encoding/json.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func appendJSONTime(b []byte, ns int64) []byte {
	b = append(b, '"')
	b = time.Unix(0, ns).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// jsonPlain marks the bytes AppendJSONString copies as they are: printable
// ASCII but the quote and the backslash. One table load per byte is what
// the scan of a plain string costs (BenchmarkAppendJSONString).
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendJSONString appends s as a JSON string, byte for byte as
// encoding/json does with HTML escaping off: \", \\, \b, \f, \n, \r, \t,
// \u00XX for the other control characters, \u2028 and \u2029 escaped, and
// every byte of invalid UTF-8 replaced by \ufffd.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
