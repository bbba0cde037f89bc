package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/schemas"
)

func TestAppendEventJSONEnrichedQuote(t *testing.T) {
	en := sampleEnrichedQuote()
	out, err := schemas.AppendEventJSON(nil, en.AppendMsgpack(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	rfc := func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
	data, _ := got["data"].(map[string]any)
	inst, _ := data["instrument"].(map[string]any)
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"specversion", got["specversion"], "1.0"},
		{"type", got["type"], schemas.TypeQuoteEnrichedV1},
		{"datacontenttype", got["datacontenttype"], "application/json"},
		{"time", got["time"], "2025-01-02T15:04:05.123456789Z"},
		{"data.ts", data["ts"], rfc(sampleTS)},
		{"data.received_at", data["received_at"], rfc(sampleRecv)},
		{"data.enriched_at", data["enriched_at"], rfc(sampleRecv + 40_000)},
		{"data.bid", data["bid"], 189.5},
		{"data.bid_size", data["bid_size"], 100.0},
		{"data.spread_bps", data["spread_bps"], 0.02 / 189.51 * 1e4},
		{"data.instrument.isin", inst["isin"], "US0378331005"},
		{"data.instrument.lot_size", inst["lot_size"], 100.0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	for _, k := range []string{"time", "ts", "received_at", "enriched_at"} {
		v, _ := got[k].(string)
		if k != "time" {
			v, _ = data[k].(string)
		}
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			t.Errorf("%s = %q is not RFC 3339: %v", k, v, err)
		}
	}
}

func TestAppendEventJSONEvent(t *testing.T) {
	ev := sampleTrade()
	out, err := schemas.AppendEventJSON([]byte("prefix:"), encodeEvent(ev, nil))
	if err != nil {
		t.Fatal(err)
	}
	out, ok := bytes.CutPrefix(out, []byte("prefix:"))
	if !ok || !json.Valid(out) {
		t.Fatalf("output %s", out)
	}
	var got struct {
		Subject    string `json:"subject"`
		SluiceRecv int64  `json:"sluicerecv"`
		Data       struct {
			Conditions []string `json:"conditions"`
			TS         string   `json:"ts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Subject != "BRK.B" || got.SluiceRecv != sampleRecv || len(got.Data.Conditions) != 2 || got.Data.TS == "" {
		t.Errorf("decoded %+v", got)
	}
}

// TestAppendJSONStringMatchesEncodingJSON compares our string escaping with
// encoding/json's, HTML escaping off, byte for byte.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for c := 0; c < 0x80; c++ {
		all.WriteByte(byte(c))
	}
	tests := []string{
		"", "plain", `"quoted"`, `back\slash`, "new\nline", "tab\t cr\r", "bell\a bs\b ff\f nul\x00 us\x1f del\x7f",
		"<html> & 'single'", "line\u2028sep\u2029para", "ünïcödé €𝄞", "invalid \xff utf8 \xc3", "\xed\xa0\x80 surrogate",
		"truncated \xe2\x82", all.String(),
	}
	for _, s := range tests {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := schemas.AppendJSONString(nil, s)
		if !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("AppendJSONString(%q)\n got %s\nwant %s", s, got, want.Bytes())
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || utf8.ValidString(s) && back != s {
			t.Errorf("AppendJSONString(%q) reads back as %q, %v", s, back, err)
		}
	}
}

func TestAppendEventJSONValues(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"nil", []byte{0xc0}, `null`},
		{"bools", []byte{0x92, 0xc3, 0xc2}, `[true,false]`},
		{"ints", append(append(schemas.AppendInt([]byte{0x93}, -5), schemas.AppendInt(nil, math.MinInt64)...), schemas.AppendUint(nil, math.MaxUint64)...),
			`[-5,-9223372036854775808,18446744073709551615]`},
		{"floats as encoding/json", eventMapFloats(1e20, 1e21, 1e-6, 1e-7, 123456789, 0.1, -0),
			`[100000000000000000000,1e+21,0.000001,1e-7,123456789,0.1,0]`},
		{"float32", []byte{0xca, 0x3d, 0xcc, 0xcc, 0xcd}, `0.1`},
		{"NaN and Inf", eventMapFloats(math.NaN(), math.Inf(-1)), `[null,null]`},
		{"bin", []byte{0xc4, 0x02, 'h', 'i'}, `"hi"`},
		{"time keys", eventMap("ts", 0, "received_at", -1, "enriched_at", 1, "other", 1),
			`{"ts":"1970-01-01T00:00:00Z","received_at":"1969-12-31T23:59:59.999999999Z","enriched_at":"1970-01-01T00:00:00.000000001Z","other":1}`},
		{"timestamp extension", eventMap("t", schemas.AppendTimestamp(nil, -1e9)), `{"t":"1969-12-31T23:59:59Z"}`},
		{"datacontenttype", eventMap("datacontenttype", "application/msgpack", "x", "application/msgpack"),
			`{"datacontenttype":"application/json","x":"application/msgpack"}`},
		{"other datacontenttype kept", eventMap("datacontenttype", "text/plain"), `{"datacontenttype":"text/plain"}`},
		{"nested", eventMap("a", eventMap("b", []byte{0x91, 0x90}), "c", eventMap()), `{"a":{"b":[[]]},"c":{}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := schemas.AppendEventJSON(nil, tc.in)
			if err != nil || string(out) != tc.want {
				t.Errorf("AppendEventJSON(% x) = %s, %v; want %s", tc.in, out, err, tc.want)
			}
			if !json.Valid(out) {
				t.Errorf("invalid JSON %s", out)
			}
		})
	}
}

// TestAppendEventJSONFloatsMatchEncodingJSON checks number formatting against
// encoding/json over a spread of magnitudes.
func TestAppendEventJSONFloatsMatchEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.5, 189.52, 1e-6, 9.99e-7, 1e-300, 1e20, 1e21, 123456789.123, math.MaxFloat64, 5e-324, 0.1 + 0.2} {
		out, err := schemas.AppendEventJSON(nil, schemas.AppendFloat64(nil, f))
		want, _ := json.Marshal(f)
		if err != nil || string(out) != string(want) {
			t.Errorf("%g: got %s, %v; want %s", f, out, err, want)
		}
	}
	for _, f := range []float32{0.1, 1e-7, 1e21, 3.4e38, 16777216} {
		b := []byte{0xca, 0, 0, 0, 0}
		u := math.Float32bits(f)
		b[1], b[2], b[3], b[4] = byte(u>>24), byte(u>>16), byte(u>>8), byte(u)
		out, err := schemas.AppendEventJSON(nil, b)
		want, _ := json.Marshal(f)
		if err != nil || string(out) != string(want) {
			t.Errorf("float32 %g: got %s, %v; want %s", f, out, err, want)
		}
	}
}

func eventMapFloats(fs ...float64) []byte {
	b := schemas.AppendArrayHeader(nil, len(fs))
	for _, f := range fs {
		b = schemas.AppendFloat64(b, f)
	}
	return b
}

func TestAppendEventJSONErrors(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, 100)
	deep = append(deep, 0xc0)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, schemas.ErrShortBuffer},
		{"truncated map", []byte{0x82, 0xa1, 'a', 0x01}, schemas.ErrShortBuffer},
		{"non-string key", []byte{0x81, 0x01, 0x01}, schemas.ErrType},
		{"user extension", []byte{0xd4, 0x05, 0x00}, schemas.ErrType},
		{"fixext 4 of a user type", []byte{0xd6, 0x05, 0, 0, 0, 0}, schemas.ErrType},
		{"never-used code", []byte{0xc1}, schemas.ErrType},
		{"too deep", deep, schemas.ErrFrame},
		{"time key overflow", eventMap("ts", []byte{0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0}), schemas.ErrOverflow},
	}
	for _, tc := range tests {
		if _, err := schemas.AppendEventJSON(nil, tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestAppendEventJSONDoesNotAllocate(t *testing.T) {
	raw := func() []byte { en := sampleEnrichedQuote(); return en.AppendMsgpack(nil) }()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = schemas.AppendEventJSON(buf[:0], raw); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
