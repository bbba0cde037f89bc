package schemas_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

func TestIntRoundTrip(t *testing.T) {
	tests := []struct {
		v    int64
		size int // encoded length
	}{
		{0, 1}, {1, 1}, {127, 1}, {128, 2}, {255, 2}, {256, 3}, {math.MaxUint16, 3},
		{math.MaxUint16 + 1, 5}, {math.MaxUint32, 5}, {math.MaxUint32 + 1, 9}, {math.MaxInt64, 9},
		{-1, 1}, {-32, 1}, {-33, 2}, {math.MinInt8, 2}, {math.MinInt8 - 1, 3}, {math.MinInt16, 3},
		{math.MinInt16 - 1, 5}, {math.MinInt32, 5}, {math.MinInt32 - 1, 9}, {math.MinInt64, 9},
	}
	for _, tc := range tests {
		b := schemas.AppendInt(nil, tc.v)
		if len(b) != tc.size {
			t.Errorf("AppendInt(%d) = % x: %d bytes, want %d", tc.v, b, len(b), tc.size)
		}
		r := schemas.NewReader(b)
		if !r.IsInt() || !r.IsNumber() {
			t.Errorf("IsInt/IsNumber of % x = false", b)
		}
		if got := r.Int64(); got != tc.v || r.Err() != nil || !r.Done() {
			t.Errorf("Int64(% x) = %d, %v; want %d", b, got, r.Err(), tc.v)
		}
		r.Reset(b)
		if got := r.Float64(); got != float64(tc.v) || r.Err() != nil {
			t.Errorf("Float64(% x) = %g, %v; want %d", b, got, r.Err(), tc.v)
		}
		r.Reset(b)
		got := r.Uint64()
		if tc.v < 0 {
			if !errors.Is(r.Err(), schemas.ErrOverflow) {
				t.Errorf("Uint64(% x) = %d, %v; want ErrOverflow", b, got, r.Err())
			}
		} else if got != uint64(tc.v) || r.Err() != nil {
			t.Errorf("Uint64(% x) = %d, %v; want %d", b, got, r.Err(), tc.v)
		}
	}
}

func TestUintRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 127, 128, 255, 256, math.MaxUint16, math.MaxUint16 + 1, math.MaxUint32,
		math.MaxUint32 + 1, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		b := schemas.AppendUint(nil, v)
		r := schemas.NewReader(b)
		if got := r.Uint64(); got != v || r.Err() != nil || !r.Done() {
			t.Errorf("Uint64(% x) = %d, %v; want %d", b, got, r.Err(), v)
		}
		r.Reset(b)
		got := r.Int64()
		if v > math.MaxInt64 {
			if !errors.Is(r.Err(), schemas.ErrOverflow) {
				t.Errorf("Int64(% x) = %d, %v; want ErrOverflow", b, got, r.Err())
			}
		} else if got != int64(v) || r.Err() != nil {
			t.Errorf("Int64(% x) = %d, %v; want %d", b, got, r.Err(), v)
		}
	}
}

// TestIntWidths reads every integer encoding, including the non-compact ones
// that other libraries write.
func TestIntWidths(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"\x05", 5}, {"\xfb", -5},
		{"\xcc\xff", 255}, {"\xcd\xff\xff", 65535}, {"\xce\xff\xff\xff\xff", math.MaxUint32},
		{"\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", math.MaxInt64},
		{"\xd0\x80", -128}, {"\xd0\x05", 5}, {"\xd1\x80\x00", -32768}, {"\xd2\x80\x00\x00\x00", math.MinInt32},
		{"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", math.MinInt64}, {"\xd3\x00\x00\x00\x00\x00\x00\x00\x01", 1},
	}
	for _, tc := range tests {
		r := schemas.NewReader([]byte(tc.in))
		if got := r.Int64(); got != tc.want || r.Err() != nil || !r.Done() {
			t.Errorf("Int64(% x) = %d, %v; want %d", tc.in, got, r.Err(), tc.want)
		}
	}
}

func TestUint64AboveMaxInt64ViaInt64(t *testing.T) {
	b := schemas.AppendUint(nil, math.MaxInt64+1)
	r := schemas.NewReader(b)
	if got := r.Int64(); got != 0 || !errors.Is(r.Err(), schemas.ErrOverflow) {
		t.Fatalf("Int64 = %d, %v; want 0, ErrOverflow", got, r.Err())
	}
	// Errors are sticky.
	if got := r.Int64(); got != 0 || !errors.Is(r.Err(), schemas.ErrOverflow) || !r.Done() {
		t.Fatalf("after error: Int64 = %d, %v", got, r.Err())
	}
}

func TestFloatRoundTrip(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 189.52, 1e-300, math.MaxFloat64,
		math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN()} {
		b := schemas.AppendFloat64(nil, f)
		if len(b) != 9 || b[0] != 0xcb {
			t.Errorf("AppendFloat64(%g) = % x", f, b)
		}
		r := schemas.NewReader(b)
		if got := r.Float64(); !sameFloat(got, f) || r.Err() != nil || !r.Done() {
			t.Errorf("Float64(% x) = %g, %v; want %g", b, got, r.Err(), f)
		}
	}
	// float 32 from other writers.
	r := schemas.NewReader([]byte{0xca, 0x3f, 0xc0, 0x00, 0x00})
	if got := r.Float64(); got != 1.5 || r.Err() != nil {
		t.Errorf("Float64(float32 1.5) = %g, %v", got, r.Err())
	}
	// A float is not an integer.
	r = schemas.NewReader(schemas.AppendFloat64(nil, 1))
	if r.IsInt() || !r.IsNumber() {
		t.Errorf("IsInt, IsNumber of a float = %v, %v", r.IsInt(), r.IsNumber())
	}
	if r.Int64(); !errors.Is(r.Err(), schemas.ErrType) {
		t.Errorf("Int64 of a float: %v, want ErrType", r.Err())
	}
}

func TestBoolNil(t *testing.T) {
	b := schemas.AppendBool(schemas.AppendBool(schemas.AppendNil(nil), true), false)
	if !bytes.Equal(b, []byte{0xc0, 0xc3, 0xc2}) {
		t.Fatalf("encoded % x", b)
	}
	r := schemas.NewReader(b)
	if !r.IsNil() {
		t.Fatal("IsNil = false")
	}
	r.Skip()
	if !r.Bool() || r.Bool() || r.Err() != nil || !r.Done() {
		t.Fatalf("Bool: %v", r.Err())
	}
	r.Reset([]byte{0x01})
	if r.Bool(); !errors.Is(r.Err(), schemas.ErrType) {
		t.Fatalf("Bool of an int: %v", r.Err())
	}
}

func TestStringRoundTrip(t *testing.T) {
	tests := []struct {
		n      int
		header []byte
	}{
		{0, []byte{0xa0}}, {31, []byte{0xbf}}, {32, []byte{0xd9, 32}}, {255, []byte{0xd9, 255}},
		{256, []byte{0xda, 1, 0}}, {65535, []byte{0xda, 0xff, 0xff}}, {65536, []byte{0xdb, 0, 1, 0, 0}},
	}
	for _, tc := range tests {
		s := strings.Repeat("x", tc.n)
		for name, b := range map[string][]byte{
			"AppendString":      schemas.AppendString(nil, s),
			"AppendStringBytes": schemas.AppendStringBytes(nil, []byte(s)),
		} {
			if !bytes.HasPrefix(b, tc.header) || len(b) != len(tc.header)+tc.n {
				t.Errorf("%s(len %d): header % x, length %d", name, tc.n, b[:min(len(b), 5)], len(b))
			}
			r := schemas.NewReader(b)
			if !r.IsString() {
				t.Errorf("IsString(len %d) = false", tc.n)
			}
			if got := r.String(); got != s || r.Err() != nil || !r.Done() {
				t.Errorf("String(len %d) = len %d, %v", tc.n, len(got), r.Err())
			}
			r.Reset(b)
			if r.Skip(); r.Err() != nil || !r.Done() {
				t.Errorf("Skip(str len %d): %v", tc.n, r.Err())
			}
		}
	}
}

// TestStringAliases checks the zero-copy contract of Reader.String.
func TestStringAliases(t *testing.T) {
	b := schemas.AppendString(nil, "abc")
	r := schemas.NewReader(b)
	s := r.String()
	b[1] = 'X'
	if s != "Xbc" {
		t.Fatalf("String does not alias its input: %q", s)
	}
}

func TestBinReadsAsString(t *testing.T) {
	for _, in := range []string{"\xc4\x02hi", "\xc5\x00\x02hi", "\xc6\x00\x00\x00\x02hi"} {
		r := schemas.NewReader([]byte(in))
		if r.IsString() {
			t.Errorf("IsString(bin % x) = true", in)
		}
		if got := r.String(); got != "hi" || r.Err() != nil {
			t.Errorf("String(bin % x) = %q, %v", in, got, r.Err())
		}
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		n          int
		arr, mapHd []byte
	}{
		{0, []byte{0x90}, []byte{0x80}},
		{15, []byte{0x9f}, []byte{0x8f}},
		{16, []byte{0xdc, 0, 16}, []byte{0xde, 0, 16}},
		{65535, []byte{0xdc, 0xff, 0xff}, []byte{0xde, 0xff, 0xff}},
		{65536, []byte{0xdd, 0, 1, 0, 0}, []byte{0xdf, 0, 1, 0, 0}},
	}
	for _, tc := range tests {
		a := schemas.AppendArrayHeader(nil, tc.n)
		m := schemas.AppendMapHeader(nil, tc.n)
		if !bytes.Equal(a, tc.arr) || !bytes.Equal(m, tc.mapHd) {
			t.Errorf("headers(%d) = % x, % x; want % x, % x", tc.n, a, m, tc.arr, tc.mapHd)
		}
		// The reader refuses a count larger than what is left, so give it
		// the elements.
		a = append(a, make([]byte, tc.n)...)
		r := schemas.NewReader(a)
		if got := r.ArrayHeader(); got != tc.n || r.Err() != nil {
			t.Errorf("ArrayHeader(%d) = %d, %v", tc.n, got, r.Err())
		}
		m = append(m, make([]byte, 2*tc.n)...)
		r = schemas.NewReader(m)
		if got := r.MapHeader(); got != tc.n || r.Err() != nil {
			t.Errorf("MapHeader(%d) = %d, %v", tc.n, got, r.Err())
		}
		r.Reset(m)
		if r.Skip(); r.Err() != nil || !r.Done() {
			t.Errorf("Skip(map %d): %v, %d left", tc.n, r.Err(), len(r.Rest()))
		}
	}
}

func TestArrayHeader32(t *testing.T) {
	b := schemas.AppendArrayHeader32([]byte{}, 0)
	if !bytes.Equal(b, []byte{0xdd, 0, 0, 0, 0}) {
		t.Fatalf("AppendArrayHeader32 = % x", b)
	}
	for i := 0; i < 3; i++ {
		b = schemas.AppendInt(b, int64(i))
	}
	schemas.PatchArrayHeader32(b, 3)
	r := schemas.NewReader(b)
	if n := r.ArrayHeader(); n != 3 || r.Err() != nil {
		t.Fatalf("ArrayHeader = %d, %v", n, r.Err())
	}
}

func TestHeaderCountBeyondInput(t *testing.T) {
	// Counts larger than the bytes left are refused before anyone
	// preallocates for them.
	for _, in := range []string{"\xdc\xff\xff", "\xdd\x7f\xff\xff\xff", "\xde\xff\xff", "\xdf\xff\xff\xff\xff"} {
		r := schemas.NewReader([]byte(in))
		var n int
		if in[0] == 0xdc || in[0] == 0xdd {
			n = r.ArrayHeader()
		} else {
			n = r.MapHeader()
		}
		if n != 0 || !errors.Is(r.Err(), schemas.ErrShortBuffer) {
			t.Errorf("header % x = %d, %v; want ErrShortBuffer", in, n, r.Err())
		}
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		code byte // the form AppendTimestamp picks
	}{
		{"epoch", time.Unix(0, 0), 0xd7},
		{"now-ish", time.Date(2025, 1, 2, 15, 4, 5, 123456789, time.UTC), 0xd7},
		{"whole seconds", time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC), 0xd7},
		{"first past 64-bit form", time.Unix(1<<34, 0), 0xc7},
		{"one ns before epoch", time.Unix(0, -1), 0xc7},
		{"pre-1970", time.Date(1969, 7, 20, 20, 17, 40, 500, time.UTC), 0xc7},
		{"1900", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0xc7},
		{"min int64 ns", time.Unix(0, math.MinInt64), 0xc7},
		{"max int64 ns", time.Unix(0, math.MaxInt64), 0xd7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.t.UnixNano()
			b := schemas.AppendTimestamp(nil, ns)
			if b[0] != tc.code {
				t.Errorf("form % x, want code %#x", b, tc.code)
			}
			r := schemas.NewReader(b)
			if got := r.Timestamp(); got != ns || r.Err() != nil || !r.Done() {
				t.Errorf("Timestamp(% x) = %d, %v; want %d", b, got, r.Err(), ns)
			}
			r.Reset(b)
			if r.Skip(); r.Err() != nil || !r.Done() {
				t.Errorf("Skip: %v", r.Err())
			}
		})
	}
}

func TestTimestampForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"32-bit", "\xd6\xff\x00\x00\x00\x01", 1e9},
		{"32-bit max", "\xd6\xff\xff\xff\xff\xff", math.MaxUint32 * 1e9},
		{"64-bit", "\xd7\xff\x00\x00\x00\x04\x00\x00\x00\x02", 2e9 + 1},
		{"96-bit negative", "\xc7\x0c\xff\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff", -1e9 + 1},
		{"integer ns", "\xd3\xff\xff\xff\xff\xff\xff\xff\xff", -1},
		{"fixint ns", "\x07", 7},
	}
	for _, tc := range tests {
		r := schemas.NewReader([]byte(tc.in))
		if got := r.Timestamp(); got != tc.want || r.Err() != nil || !r.Done() {
			t.Errorf("%s: Timestamp = %d, %v; want %d", tc.name, got, r.Err(), tc.want)
		}
	}
}

func TestTimestampErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"other ext type", "\xd6\x01\x00\x00\x00\x01", schemas.ErrType},
		{"96-bit other length", "\xc7\x0b\xff\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\xff", schemas.ErrType},
		{"string", "\xa1x", schemas.ErrType},
		{"nil", "\xc0", schemas.ErrType},
		{"truncated 64-bit", "\xd7\xff\x00", schemas.ErrShortBuffer},
		{"truncated 96-bit", "\xc7\x0c\xff\x00", schemas.ErrShortBuffer},
		{"empty", "", schemas.ErrShortBuffer},
		{"96-bit past 2262", "\xc7\x0c\xff\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00", schemas.ErrOverflow},
		{"96-bit before 1677", "\xc7\x0c\xff\x00\x00\x00\x00\xff\xff\xff\xfc\x00\x00\x00\x00", schemas.ErrOverflow},
		{"64-bit past 2262", "\xd7\xff\x00\x00\x00\x03\xff\xff\xff\xff", schemas.ErrOverflow},
	}
	for _, tc := range tests {
		r := schemas.NewReader([]byte(tc.in))
		if got := r.Timestamp(); got != 0 || !errors.Is(r.Err(), tc.want) {
			t.Errorf("%s: Timestamp = %d, %v; want %v", tc.name, got, r.Err(), tc.want)
		}
	}
}

// TestSkip skips every MessagePack type, alone and nested, and checks that
// exactly the value is consumed.
func TestSkip(t *testing.T) {
	nested := schemas.AppendMapHeader(nil, 2)
	nested = schemas.AppendString(nested, "a")
	nested = schemas.AppendArrayHeader(nested, 3)
	nested = schemas.AppendInt(nested, -1)
	nested = schemas.AppendMapHeader(nested, 1)
	nested = schemas.AppendString(nested, "deep")
	nested = schemas.AppendArrayHeader(nested, 0)
	nested = schemas.AppendTimestamp(nested, -5)
	nested = schemas.AppendString(nested, "b")
	nested = append(nested, 0xd4, 0x05, 0x01) // fixext 1 of a user type

	values := map[string]string{
		"positive fixint": "\x7f", "negative fixint": "\xe0", "nil": "\xc0", "false": "\xc2", "true": "\xc3",
		"fixmap": "\x81\xa1k\x01", "fixarray": "\x92\x01\x02", "fixstr": "\xa3abc",
		"uint8": "\xcc\x01", "uint16": "\xcd\x01\x02", "uint32": "\xce\x01\x02\x03\x04", "uint64": "\xcf\x01\x02\x03\x04\x05\x06\x07\x08",
		"int8": "\xd0\x01", "int16": "\xd1\x01\x02", "int32": "\xd2\x01\x02\x03\x04", "int64": "\xd3\x01\x02\x03\x04\x05\x06\x07\x08",
		"float32": "\xca\x01\x02\x03\x04", "float64": "\xcb\x01\x02\x03\x04\x05\x06\x07\x08",
		"str8": "\xd9\x02ab", "str16": "\xda\x00\x02ab", "str32": "\xdb\x00\x00\x00\x02ab",
		"bin8": "\xc4\x02ab", "bin16": "\xc5\x00\x02ab", "bin32": "\xc6\x00\x00\x00\x02ab",
		"array16": "\xdc\x00\x02\x01\x02", "array32": "\xdd\x00\x00\x00\x02\x01\x02",
		"map16": "\xde\x00\x01\x01\x02", "map32": "\xdf\x00\x00\x00\x01\x01\x02",
		"fixext1": "\xd4\x01\x00", "fixext2": "\xd5\x01\x00\x00", "fixext4": "\xd6\x01\x00\x00\x00\x00",
		"fixext8": "\xd7\x01" + strings.Repeat("\x00", 8), "fixext16": "\xd8\x01" + strings.Repeat("\x00", 16),
		"ext8": "\xc7\x03\x01abc", "ext16": "\xc8\x00\x03\x01abc", "ext32": "\xc9\x00\x00\x00\x03\x01abc",
		"empty ext8": "\xc7\x00\x01",
		"nested":     string(nested),
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			const after = "\xa5after"
			r := schemas.NewReader([]byte(v + after))
			raw := r.Raw()
			if r.Err() != nil || string(raw) != v {
				t.Fatalf("Raw = % x, %v; want % x", raw, r.Err(), v)
			}
			if s := r.String(); s != "after" || !r.Done() {
				t.Fatalf("after Skip: %q, %v", s, r.Err())
			}
			// Every strict prefix is truncated.
			for i := 0; i < len(v); i++ {
				r := schemas.NewReader([]byte(v[:i]))
				if r.Skip(); !errors.Is(r.Err(), schemas.ErrShortBuffer) {
					t.Fatalf("Skip(% x) = %v, want ErrShortBuffer", v[:i], r.Err())
				}
			}
		})
	}
}

func TestSkipNeverUsedCode(t *testing.T) {
	r := schemas.NewReader([]byte{0x91, 0xc1})
	if r.Skip(); !errors.Is(r.Err(), schemas.ErrType) {
		t.Fatalf("Skip(0xc1) = %v, want ErrType", r.Err())
	}
	if raw := r.Raw(); raw != nil {
		t.Fatalf("Raw after error = % x", raw)
	}
}

// TestTruncation checks that every typed read of every strict prefix fails
// with ErrShortBuffer and returns a zero value.
func TestTruncation(t *testing.T) {
	type read func(r *schemas.Reader) any
	tests := []struct {
		name string
		enc  []byte
		read read
	}{
		{"int64", schemas.AppendInt(nil, math.MinInt64), func(r *schemas.Reader) any { return r.Int64() }},
		{"uint64", schemas.AppendUint(nil, math.MaxUint64), func(r *schemas.Reader) any { return r.Uint64() }},
		{"uint32", schemas.AppendUint(nil, math.MaxUint32), func(r *schemas.Reader) any { return r.Int64() }},
		{"float64", schemas.AppendFloat64(nil, 1.5), func(r *schemas.Reader) any { return r.Float64() }},
		{"float32", []byte{0xca, 0x3f, 0xc0, 0, 0}, func(r *schemas.Reader) any { return r.Float64() }},
		{"string", schemas.AppendString(nil, strings.Repeat("s", 40)), func(r *schemas.Reader) any { return r.String() }},
		{"str16", schemas.AppendString(nil, strings.Repeat("s", 300)), func(r *schemas.Reader) any { return r.String() }},
		{"bool", schemas.AppendBool(nil, true), func(r *schemas.Reader) any { return r.Bool() }},
		{"timestamp64", schemas.AppendTimestamp(nil, 1), func(r *schemas.Reader) any { return r.Timestamp() }},
		{"timestamp96", schemas.AppendTimestamp(nil, -1), func(r *schemas.Reader) any { return r.Timestamp() }},
		{"array16", schemas.AppendArrayHeader(nil, 20), func(r *schemas.Reader) any { return r.ArrayHeader() }},
		{"map32", schemas.AppendMapHeader(nil, 70000), func(r *schemas.Reader) any { return r.MapHeader() }},
	}
	for _, tc := range tests {
		for i := 0; i < len(tc.enc); i++ {
			r := schemas.NewReader(tc.enc[:i])
			got := tc.read(&r)
			if !errors.Is(r.Err(), schemas.ErrShortBuffer) {
				t.Errorf("%s: reading %d of %d bytes: %v, want ErrShortBuffer", tc.name, i, len(tc.enc), r.Err())
			}
			switch v := got.(type) {
			case string:
				if v != "" {
					t.Errorf("%s: zero value %q", tc.name, v)
				}
			default:
				if v != any(int64(0)) && v != any(uint64(0)) && v != any(0.0) && v != any(false) && v != any(0) {
					t.Errorf("%s: zero value %v", tc.name, v)
				}
			}
		}
	}
}

func TestReaderState(t *testing.T) {
	b := schemas.AppendString(schemas.AppendInt(nil, 1), "x")
	r := schemas.NewReader(b)
	if r.Peek() != 0x01 || r.Offset() != 0 || r.Done() {
		t.Fatal("fresh reader state")
	}
	r.Int64()
	if r.Offset() != 1 || !bytes.Equal(r.Rest(), b[1:]) {
		t.Fatalf("Offset %d, Rest % x", r.Offset(), r.Rest())
	}
	_ = r.String()
	if !r.Done() || r.Peek() != 0 || r.IsNil() || r.IsInt() || r.IsNumber() || r.IsString() {
		t.Fatal("drained reader state")
	}
	r.Int64()
	if !errors.Is(r.Err(), schemas.ErrShortBuffer) {
		t.Fatalf("read past the end: %v", r.Err())
	}
	r.Reset(b)
	if r.Err() != nil || r.Int64() != 1 {
		t.Fatal("Reset does not clear the error")
	}
}

func TestTypeErrors(t *testing.T) {
	r := schemas.NewReader([]byte{0x01})
	if r.MapHeader(); !errors.Is(r.Err(), schemas.ErrType) || !strings.Contains(r.Err().Error(), "want map, got code 0x01") {
		t.Errorf("MapHeader of an int: %v", r.Err())
	}
	r.Reset([]byte{0x80})
	if r.ArrayHeader(); !errors.Is(r.Err(), schemas.ErrType) {
		t.Errorf("ArrayHeader of a map: %v", r.Err())
	}
	r.Reset([]byte{0x01})
	if _ = r.String(); !errors.Is(r.Err(), schemas.ErrType) {
		t.Errorf("String of an int: %v", r.Err())
	}
	r.Reset([]byte{0xa0})
	if r.Float64(); !errors.Is(r.Err(), schemas.ErrType) {
		t.Errorf("Float64 of a string: %v", r.Err())
	}
}
