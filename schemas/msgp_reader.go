package schemas

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// Reader decodes MessagePack from a byte slice without copying. Errors are
// sticky: after the first one every read returns a zero value and [Reader.Err]
// reports it, so decoders check once at the end.
//
// Strings returned by [Reader.String] alias the input: the input must not be
// modified while they are in use. NATS messages and pooled-then-copied request
// bodies satisfy this; a caller that reuses its buffer copies strings first.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Reset points r at b and clears its error.
func (r *Reader) Reset(b []byte) { r.b, r.off, r.err = b, 0, nil }

// Err returns the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Offset returns how many bytes have been consumed.
func (r *Reader) Offset() int { return r.off }

// Rest returns the bytes not consumed yet.
func (r *Reader) Rest() []byte { return r.b[r.off:] }

// Done reports whether every byte has been consumed or an error was met.
func (r *Reader) Done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *Reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.off = len(r.b)
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail(ErrShortBuffer)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

// Peek returns the next type byte without consuming it, 0 at the end.
func (r *Reader) Peek() byte {
	if r.err != nil || r.off >= len(r.b) {
		return 0
	}
	return r.b[r.off]
}

// IsNil reports whether the next value is nil.
func (r *Reader) IsNil() bool { return r.err == nil && r.off < len(r.b) && r.b[r.off] == 0xc0 }

// MapHeader reads a map header and returns its pair count. A count larger
// than the bytes left fails with [ErrShortBuffer], so that a caller can size
// storage by it.
func (r *Reader) MapHeader() int {
	p := r.take(1)
	if p == nil {
		return 0
	}
	switch c := p[0]; {
	case c&0xf0 == 0x80:
		return r.count(int(c & 0x0f))
	case c == 0xde:
		return r.len16()
	case c == 0xdf:
		return r.len32()
	}
	r.fail(typeError("map", p[0]))
	return 0
}

// ArrayHeader reads an array header and returns its element count. A count
// larger than the bytes left fails with [ErrShortBuffer], so that a caller can
// size storage by it.
func (r *Reader) ArrayHeader() int {
	p := r.take(1)
	if p == nil {
		return 0
	}
	switch c := p[0]; {
	case c&0xf0 == 0x90:
		return r.count(int(c & 0x0f))
	case c == 0xdc:
		return r.len16()
	case c == 0xdd:
		return r.len32()
	}
	r.fail(typeError("array", p[0]))
	return 0
}

func (r *Reader) len16() int {
	p := r.take(2)
	if p == nil {
		return 0
	}
	return r.count(int(binary.BigEndian.Uint16(p)))
}

func (r *Reader) len32() int {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return r.count(int(binary.BigEndian.Uint32(p)))
}

// count checks a length or element count read from a header. Every element
// takes at least one byte: a count past what is left is corrupt, and refusing
// it here bounds what callers preallocate.
func (r *Reader) count(n int) int {
	if n > len(r.b)-r.off {
		r.fail(ErrShortBuffer)
		return 0
	}
	return n
}

// StringBytes reads a str (or bin) value and returns its bytes, aliasing the
// input.
func (r *Reader) StringBytes() []byte {
	// Fast path: a fixstr (up to 31 bytes), which every key and most values
	// are.
	if off := r.off; r.err == nil && off < len(r.b) {
		if c := r.b[off]; c&0xe0 == 0xa0 {
			if end := off + 1 + int(c&0x1f); end <= len(r.b) {
				r.off = end
				return r.b[off+1 : end]
			}
		}
	}
	return r.stringBytes()
}

func (r *Reader) stringBytes() []byte {
	p := r.take(1)
	if p == nil {
		return nil
	}
	var n int
	switch c := p[0]; {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		q := r.take(1)
		if q == nil {
			return nil
		}
		n = int(q[0])
	case c == 0xda || c == 0xc5:
		n = r.len16()
	case c == 0xdb || c == 0xc6:
		n = r.len32()
	default:
		r.fail(typeError("string", c))
		return nil
	}
	return r.take(n)
}

// String reads a str value; the result aliases the input (see [Reader]).
func (r *Reader) String() string {
	b := r.StringBytes()
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Bool reads a bool.
func (r *Reader) Bool() bool {
	p := r.take(1)
	if p == nil {
		return false
	}
	switch p[0] {
	case 0xc2:
		return false
	case 0xc3:
		return true
	}
	r.fail(typeError("bool", p[0]))
	return false
}

// Float64 reads any number (float or integer) as a float64.
func (r *Reader) Float64() float64 {
	c := r.Peek()
	switch c {
	case 0xcb:
		p := r.take(9)
		if p == nil {
			return 0
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p[1:]))
	case 0xca:
		p := r.take(5)
		if p == nil {
			return 0
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(p[1:])))
	}
	if isInt(c) {
		return float64(r.Int64())
	}
	r.fail(typeError("number", c))
	return 0
}

func isInt(c byte) bool {
	return c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3)
}

// IsNumber reports whether the next value is an integer or a float.
func (r *Reader) IsNumber() bool {
	c := r.Peek()
	return r.err == nil && r.off < len(r.b) && (isInt(c) || c == 0xca || c == 0xcb)
}

// IsInt reports whether the next value is an integer.
func (r *Reader) IsInt() bool {
	return r.err == nil && r.off < len(r.b) && isInt(r.b[r.off])
}

// IsString reports whether the next value is a str.
func (r *Reader) IsString() bool {
	c := r.Peek()
	return r.err == nil && r.off < len(r.b) && (c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb)
}

// Int64 reads an integer of any width. A uint64 above MaxInt64 is an error.
func (r *Reader) Int64() int64 {
	p := r.take(1)
	if p == nil {
		return 0
	}
	c := p[0]
	switch {
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	}
	switch c {
	case 0xcc:
		if q := r.take(1); q != nil {
			return int64(q[0])
		}
	case 0xcd:
		if q := r.take(2); q != nil {
			return int64(binary.BigEndian.Uint16(q))
		}
	case 0xce:
		if q := r.take(4); q != nil {
			return int64(binary.BigEndian.Uint32(q))
		}
	case 0xcf:
		if q := r.take(8); q != nil {
			u := binary.BigEndian.Uint64(q)
			if u > math.MaxInt64 {
				r.fail(ErrOverflow)
				return 0
			}
			return int64(u)
		}
	case 0xd0:
		if q := r.take(1); q != nil {
			return int64(int8(q[0]))
		}
	case 0xd1:
		if q := r.take(2); q != nil {
			return int64(int16(binary.BigEndian.Uint16(q)))
		}
	case 0xd2:
		if q := r.take(4); q != nil {
			return int64(int32(binary.BigEndian.Uint32(q)))
		}
	case 0xd3:
		if q := r.take(8); q != nil {
			return int64(binary.BigEndian.Uint64(q))
		}
	default:
		r.fail(typeError("integer", c))
	}
	return 0
}

// Uint64 reads a non-negative integer of any width.
func (r *Reader) Uint64() uint64 {
	c := r.Peek()
	if c == 0xcf {
		if p := r.take(9); p != nil {
			return binary.BigEndian.Uint64(p[1:])
		}
		return 0
	}
	i := r.Int64()
	if i < 0 {
		r.fail(ErrOverflow)
		return 0
	}
	return uint64(i)
}

// Timestamp reads a MessagePack timestamp extension (32, 64 or 96 bit) and
// returns Unix nanoseconds. An integer is accepted as Unix nanoseconds too.
// A time that Unix nanoseconds in an int64 cannot hold (before 1677 or
// after 2262) fails with [ErrOverflow].
func (r *Reader) Timestamp() int64 { return r.timestamp(false) }

// timestamp is [Reader.Timestamp]; with sat, a time or integer past int64
// Unix nanoseconds saturates to math.MinInt64 or math.MaxInt64 instead of
// failing, so that validation can call it stale or future_timestamp.
func (r *Reader) timestamp(sat bool) int64 {
	c := r.Peek()
	if isInt(c) {
		if sat {
			return r.int64Sat()
		}
		return r.Int64()
	}
	switch c {
	case 0xd6: // timestamp 32
		p := r.take(6)
		if p == nil {
			return 0
		}
		if p[1] != 0xff {
			break
		}
		return int64(binary.BigEndian.Uint32(p[2:])) * 1e9
	case 0xd7: // timestamp 64
		p := r.take(10)
		if p == nil {
			return 0
		}
		if p[1] != 0xff {
			break
		}
		v := binary.BigEndian.Uint64(p[2:])
		return r.unixNano(int64(v&(1<<34-1)), int64(v>>34), sat)
	case 0xc7: // timestamp 96
		h := r.take(3)
		if h == nil {
			return 0
		}
		if h[1] != 12 || h[2] != 0xff {
			break
		}
		p := r.take(12)
		if p == nil {
			return 0
		}
		nsec := int64(binary.BigEndian.Uint32(p))
		sec := int64(binary.BigEndian.Uint64(p[4:]))
		return r.unixNano(sec, nsec, sat)
	default:
		r.fail(typeError("timestamp", c))
		return 0
	}
	r.fail(typeError("timestamp", c))
	return 0
}

// unixNano converts a timestamp's seconds and nanoseconds (0 <= nsec < 2^32)
// to Unix nanoseconds, failing with [ErrOverflow] outside int64's range
// (years 1677 to 2262), or with sat saturating to math.MinInt64 or
// math.MaxInt64.
func (r *Reader) unixNano(sec, nsec int64, sat bool) int64 {
	const maxSec, minSec = math.MaxInt64 / 1_000_000_000, math.MinInt64/1_000_000_000 - 1
	ns := sec*1e9 + nsec // wraps only at the edges, checked below
	switch {
	case sec < minSec || (sec == minSec && ns > 0):
		if sat {
			return math.MinInt64
		}
	case sec > maxSec || (sec == maxSec && ns < 0):
		if sat {
			return math.MaxInt64
		}
	default:
		return ns
	}
	r.fail(ErrOverflow)
	return 0
}

// int64Sat reads an integer of any width, a uint64 above MaxInt64 as
// math.MaxInt64.
func (r *Reader) int64Sat() int64 {
	if r.Peek() == 0xcf {
		if u := r.Uint64(); u <= math.MaxInt64 {
			return int64(u)
		}
		return math.MaxInt64
	}
	return r.Int64()
}

// integral reads a float that holds an integer and returns it, saturated
// at the ends of int64; on any other value (a fraction, NaN, an infinity)
// it reads nothing and returns false.
func (r *Reader) integral() (int64, bool) {
	start := r.off
	f := r.Float64()
	switch {
	case r.err != nil:
		return 0, false
	case math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f):
		r.off = start
		return 0, false
	case f >= 1<<63:
		return math.MaxInt64, true
	case f < -(1 << 63):
		return math.MinInt64, true
	}
	return int64(f), true
}

// Raw returns the bytes of the next value, whatever it is, aliasing the input.
func (r *Reader) Raw() []byte {
	start := r.off
	r.Skip()
	if r.err != nil {
		return nil
	}
	return r.b[start:r.off]
}

// Skip consumes the next value, whatever it is, nested values included.
func (r *Reader) Skip() {
	for pending := 1; pending > 0 && r.err == nil; pending-- {
		p := r.take(1)
		if p == nil {
			return
		}
		c := p[0]
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c&0xf0 == 0x80:
			pending += 2 * int(c&0x0f)
		case c&0xf0 == 0x90:
			pending += int(c & 0x0f)
		case c&0xe0 == 0xa0:
			r.take(int(c & 0x1f))
		case c == 0xcc || c == 0xd0:
			r.take(1)
		case c == 0xcd || c == 0xd1:
			r.take(2)
		case c == 0xce || c == 0xd2 || c == 0xca:
			r.take(4)
		case c == 0xcf || c == 0xd3 || c == 0xcb:
			r.take(8)
		case c == 0xd9 || c == 0xc4:
			if q := r.take(1); q != nil {
				r.take(int(q[0]))
			}
		case c == 0xda || c == 0xc5:
			r.take(r.len16())
		case c == 0xdb || c == 0xc6:
			r.take(r.len32())
		case c == 0xdc:
			pending += r.len16()
		case c == 0xdd:
			pending += r.len32()
		case c == 0xde:
			pending += 2 * r.len16()
		case c == 0xdf:
			pending += 2 * r.len32()
		case c == 0xd4:
			r.take(2)
		case c == 0xd5:
			r.take(3)
		case c == 0xd6:
			r.take(5)
		case c == 0xd7:
			r.take(9)
		case c == 0xd8:
			r.take(17)
		case c == 0xc7:
			if q := r.take(1); q != nil {
				r.take(1 + int(q[0]))
			}
		case c == 0xc8:
			r.take(1 + r.len16())
		case c == 0xc9:
			r.take(1 + r.len32())
		default:
			r.fail(typeError("value", c))
		}
		if pending > len(r.b)-r.off+1 {
			r.fail(ErrShortBuffer)
		}
	}
}

// uint32 reads a non-negative integer that fits 32 bits.
func (r *Reader) uint32() uint32 {
	u := r.Uint64()
	if u > math.MaxUint32 {
		r.fail(ErrOverflow)
		return 0
	}
	return uint32(u)
}

// resync moves r past the value that starts at offset start when that value
// is well-formed MessagePack, clearing the error met inside it; otherwise r
// keeps failing.
func (r *Reader) resync(start int) {
	r.err, r.off = nil, start
	r.Skip()
}
