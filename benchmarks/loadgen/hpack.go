package loadgen

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/schemas"
)

// h2Template holds the HPACK header blocks of a run's requests, encoded
// once. The fields every request shares (method, scheme, authority and the
// headers of [PayloadOptions] that do not depend on the event kind) are
// sent with incremental indexing in a connection's first request and as
// dynamic table indices in every later one: the peer's table then holds
// exactly those entries, in that order, for the connection's life, because
// every other field (the path, the content length, the CloudEvents type
// and id) is a literal without indexing. So each block is the shared
// prefix followed by the request's own tail, and no block depends on the
// requests sent before it but the first. The path goes between the shared
// pseudo-header fields and the shared regular ones: pseudo-header fields
// come first (RFC 9113 §8.3).
type h2Template struct {
	// first and indexed are the two forms of the shared fields, pseudo
	// [0] and regular [1]; size is the room their entries take in the
	// peer's table (RFC 7541 §4.1).
	first, indexed [2][]byte
	size           uint32
	// paths are the :path fields by kind; tails the fields of each payload
	// of the run: the per-kind headers and its content length.
	paths [3][]byte
	tails [][]byte
	// ceID is set for CloudEvents binary mode: each request then adds a
	// ce-id literal.
	ceID bool
}

// maxHeaderBlock bounds a request's header block to one frame of the
// smallest maximum frame size a peer may set: no CONTINUATION is needed.
const maxHeaderBlock = 16384

// newH2Template encodes the requests of p, bound to its target (see
// [Payloads.Bind]), for scheme and authority.
func newH2Template(p *Payloads, scheme, authority string) (*h2Template, error) {
	common := []field{{":method", http.MethodPost}, {":scheme", scheme}, {":authority", authority}}
	var perKind [3][]field
	shared := sharedHeaders(p.headers)
	common = append(common, shared...)
	for _, k := range schemas.Kinds {
		perKind[k] = append(perKind[k], field{":path", p.urls[k].RequestURI()})
		for _, f := range headerFields(p.headers[k]) {
			if !slices.Contains(shared, f) {
				perKind[k] = append(perKind[k], f)
			}
		}
	}
	t := &h2Template{ceID: p.opts.Format == FormatCEBinary}
	for _, f := range common {
		part := f.part()
		if i := staticIndex(f, true); i > 0 {
			t.first[part] = appendInt(t.first[part], 0x80, 7, uint64(i))
			continue
		}
		t.first[part] = appendLiteral(t.first[part], 0x40, 6, f)
		t.size += uint32(len(f.name) + len(f.value) + 32)
	}
	t.indexed = indexShared(common)
	var kindTails [3][]byte
	for _, k := range schemas.Kinds {
		for _, f := range perKind[k] {
			if f.name == ":path" {
				t.paths[k] = appendLiteral(t.paths[k], 0x00, 4, f)
				continue
			}
			kindTails[k] = appendLiteral(kindTails[k], 0x00, 4, f)
		}
	}
	t.tails = make([][]byte, len(p.list))
	for i := range p.list {
		pl := &p.list[i]
		tail := slices.Clone(kindTails[pl.kind])
		tail = appendLiteral(tail, 0x00, 4, field{"content-length", strconv.Itoa(len(pl.body))})
		if len(t.first[0])+len(t.first[1])+len(t.paths[pl.kind])+len(tail)+64 > maxHeaderBlock {
			return nil, fmt.Errorf("loadgen: the request headers take more than %d bytes", maxHeaderBlock)
		}
		t.tails[i] = tail
	}
	return t, nil
}

// indexShared encodes the shared fields as indices into the table the
// first block filled: the fields it inserted, the newest at index 62.
func indexShared(common []field) [2][]byte {
	n := 0
	for _, f := range common {
		if staticIndex(f, true) == 0 {
			n++
		}
	}
	var out [2][]byte
	seen := 0
	for _, f := range common {
		part := f.part()
		i := staticIndex(f, true)
		if i == 0 {
			i = len(staticTable) + n - seen
			seen++
		}
		out[part] = appendInt(out[part], 0x80, 7, uint64(i))
	}
	return out
}

// appendBlock appends the header block of request seq, payload number pl,
// of kind, to b. indexed tells whether the peer's table holds the shared entries
// (every request but a connection's first, when its table is big enough);
// runID makes the ce-id of binary mode.
func (t *h2Template) appendBlock(b []byte, indexed bool, kind schemas.Kind, pl int, seq uint64, runID string) []byte {
	shared := &t.first
	if indexed {
		shared = &t.indexed
	}
	b = append(b, shared[0]...)
	b = append(b, t.paths[kind]...)
	b = append(b, shared[1]...)
	b = append(b, t.tails[pl]...)
	if t.ceID {
		b = append(b, 0x00)
		b = appendString(b, "ce-id")
		b = appendInt(b, 0, 7, uint64(len(runID)+1+len(strconv.FormatUint(seq, 36))))
		b = append(b, runID...)
		b = append(b, '-')
		b = strconv.AppendUint(b, seq, 36)
	}
	return b
}

// field is a header field, its name lower case.
type field struct{ name, value string }

// part is 0 for a pseudo-header field, 1 for a regular one.
func (f field) part() int {
	if strings.HasPrefix(f.name, ":") {
		return 0
	}
	return 1
}

// headerFields lists h as HTTP/2 fields, sorted by name.
func headerFields(h http.Header) []field {
	var out []field
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			out = append(out, field{strings.ToLower(k), v})
		}
	}
	return out
}

// sharedHeaders are the fields every kind's headers hold alike.
func sharedHeaders(hs [3]http.Header) []field {
	var out []field
	for _, f := range headerFields(hs[schemas.Kinds[0]]) {
		all := true
		for _, k := range schemas.Kinds[1:] {
			if !slices.Contains(headerFields(hs[k]), f) {
				all = false
			}
		}
		if all {
			out = append(out, f)
		}
	}
	return out
}

// appendLiteral appends a literal field whose representation starts with
// the bits of first over a prefix of n bits (RFC 7541 §6.2): 0x40/6 with
// incremental indexing, 0x00/4 without. The name is a static index where
// the static table has it.
func appendLiteral(b []byte, first byte, n uint8, f field) []byte {
	if i := staticIndex(f, false); i > 0 {
		b = appendInt(b, first, n, uint64(i))
	} else {
		b = append(b, first)
		b = appendString(b, f.name)
	}
	return appendString(b, f.value)
}

// appendString appends s as a string literal without Huffman coding: the
// cheapest form for the peer to decode.
func appendString(b []byte, s string) []byte {
	b = appendInt(b, 0, 7, uint64(len(s)))
	return append(b, s...)
}

// appendInt appends v with an n-bit prefix after the bits of first (RFC
// 7541 §5.1).
func appendInt(b []byte, first byte, n uint8, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(max))
	v -= max
	for v >= 128 {
		b = append(b, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(b, byte(v))
}

// staticIndex returns the index of f in the static table, matching its
// value too when exact is set; 0 when it is not there.
func staticIndex(f field, exact bool) int {
	for i, s := range staticTable {
		if s.name == f.name && (!exact || s.value == f.value) {
			return i + 1
		}
	}
	return 0
}

// staticTable is the HPACK static table (RFC 7541, appendix A).
var staticTable = [...]field{
	{":authority", ""}, {":method", "GET"}, {":method", "POST"}, {":path", "/"}, {":path", "/index.html"},
	{":scheme", "http"}, {":scheme", "https"}, {":status", "200"}, {":status", "204"}, {":status", "206"},
	{":status", "304"}, {":status", "400"}, {":status", "404"}, {":status", "500"}, {"accept-charset", ""},
	{"accept-encoding", "gzip, deflate"}, {"accept-language", ""}, {"accept-ranges", ""}, {"accept", ""},
	{"access-control-allow-origin", ""}, {"age", ""}, {"allow", ""}, {"authorization", ""},
	{"cache-control", ""}, {"content-disposition", ""}, {"content-encoding", ""}, {"content-language", ""},
	{"content-length", ""}, {"content-location", ""}, {"content-range", ""}, {"content-type", ""},
	{"cookie", ""}, {"date", ""}, {"etag", ""}, {"expect", ""}, {"expires", ""}, {"from", ""}, {"host", ""},
	{"if-match", ""}, {"if-modified-since", ""}, {"if-none-match", ""}, {"if-range", ""},
	{"if-unmodified-since", ""}, {"last-modified", ""}, {"link", ""}, {"location", ""}, {"max-forwards", ""},
	{"proxy-authenticate", ""}, {"proxy-authorization", ""}, {"range", ""}, {"referer", ""}, {"refresh", ""},
	{"retry-after", ""}, {"server", ""}, {"set-cookie", ""}, {"strict-transport-security", ""},
	{"transfer-encoding", ""}, {"user-agent", ""}, {"vary", ""}, {"via", ""}, {"www-authenticate", ""},
}
