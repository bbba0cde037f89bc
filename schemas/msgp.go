package schemas

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// This file holds the MessagePack primitives the codecs are built from:
// append-style writers that never allocate beyond growing the destination,
// and a zero-copy [Reader]. They implement the subset of the MessagePack
// spec that sluice writes, and read every integer and float width so that
// frames from other MessagePack libraries decode too.

// AppendMapHeader appends a map header for n key/value pairs.
func AppendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xde, byte(n>>8), byte(n))
	}
	return append(b, 0xdf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// AppendArrayHeader appends an array header for n elements.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// AppendArrayHeader32 appends a fixed-width (5 byte) array header, so that
// the count can be patched in place with [PatchArrayHeader32] once known.
func AppendArrayHeader32(b []byte, n int) []byte {
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// PatchArrayHeader32 rewrites the count of a header written by
// [AppendArrayHeader32] at b[0:5].
func PatchArrayHeader32(b []byte, n int) {
	binary.BigEndian.PutUint32(b[1:5], uint32(n))
}

// AppendString appends s as a MessagePack str.
func AppendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

// AppendStringBytes appends s as a MessagePack str.
func AppendStringBytes(b []byte, s []byte) []byte {
	return AppendString(b, unsafe.String(unsafe.SliceData(s), len(s)))
}

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendBool appends a bool.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendFloat64 appends a float 64.
func AppendFloat64(b []byte, f float64) []byte {
	u := math.Float64bits(f)
	return append(b, 0xcb, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32),
		byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}

// AppendInt appends i in its most compact encoding.
func AppendInt(b []byte, i int64) []byte {
	switch {
	case i >= 0:
		return AppendUint(b, uint64(i))
	case i >= -32:
		return append(b, byte(i))
	case i >= math.MinInt8:
		return append(b, 0xd0, byte(i))
	case i >= math.MinInt16:
		return append(b, 0xd1, byte(i>>8), byte(i))
	case i >= math.MinInt32:
		return append(b, 0xd2, byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
	}
	return append(b, 0xd3, byte(i>>56), byte(i>>48), byte(i>>40), byte(i>>32),
		byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
}

// AppendUint appends u in its most compact encoding.
func AppendUint(b []byte, u uint64) []byte {
	switch {
	case u < 128:
		return append(b, byte(u))
	case u <= math.MaxUint8:
		return append(b, 0xcc, byte(u))
	case u <= math.MaxUint16:
		return append(b, 0xcd, byte(u>>8), byte(u))
	case u <= math.MaxUint32:
		return append(b, 0xce, byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
	}
	return append(b, 0xcf, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32),
		byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}

// AppendTimestamp appends Unix nanoseconds as the MessagePack timestamp
// extension (type -1), which every MessagePack library decodes to its native
// time type: the 64-bit form (fixext 8) from 1970 to 2514, the 96-bit form
// (ext 8 of length 12) before 1970.
func AppendTimestamp(b []byte, unixNano int64) []byte {
	sec := unixNano / 1e9
	nsec := unixNano % 1e9
	if nsec < 0 {
		nsec += 1e9
		sec--
	}
	if sec >= 0 && sec < 1<<34 {
		v := uint64(nsec)<<34 | uint64(sec)
		return append(b, 0xd7, 0xff, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
			byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	b = append(b, 0xc7, 12, 0xff, byte(nsec>>24), byte(nsec>>16), byte(nsec>>8), byte(nsec))
	s := uint64(sec)
	return append(b, byte(s>>56), byte(s>>48), byte(s>>40), byte(s>>32),
		byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}
