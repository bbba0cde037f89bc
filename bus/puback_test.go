package bus

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// pubAckCases are answers a stream gives, or could, and malformed ones:
// the table of TestParsePubAck and the seeds of FuzzParsePubAck.
var pubAckCases = []struct {
	in   string
	want pubAck
	ok   bool
	fast bool // read without encoding/json
}{
	{`{"stream":"t1-enriched","seq":42}`, pubAck{Stream: "t1-enriched", Sequence: 42}, true, true},
	{`{"stream":"S","seq":1,"duplicate":true}`, pubAck{Stream: "S", Sequence: 1, Duplicate: true}, true, true},
	{`{"stream":"S","domain":"hub","seq":18446744073709551615}`, pubAck{Stream: "S", Sequence: 1<<64 - 1}, true, true},
	{`{"stream":"S","seq":7,"val":"3","batch":"b","count":2}`, pubAck{Stream: "S", Sequence: 7}, true, true},
	{`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`,
		pubAck{Error: &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}}, true, true},
	{`{"type":"io.nats.jetstream.api.v1.pub_ack","error":{"code":400,"err_code":10060}}`,
		pubAck{Error: &jetstream.APIError{Code: 400, ErrorCode: 10060}}, true, true},
	{`{}`, pubAck{}, true, true},
	// Read by encoding/json: spaces, escapes, nulls, case, repeats.
	{` {"stream" : "S", "seq": 2} `, pubAck{Stream: "S", Sequence: 2}, true, false},
	{`{"stream":"S\u0031","seq":2}`, pubAck{Stream: "S1", Sequence: 2}, true, false},
	{`{"Stream":"S","SEQ":3}`, pubAck{Stream: "S", Sequence: 3}, true, false},
	{`{"stream":"A","stream":"B","seq":1}`, pubAck{Stream: "B", Sequence: 1}, true, false},
	{`{"stream":"S","seq":1,"error":null}`, pubAck{Stream: "S", Sequence: 1}, true, false},
	{`{"stream":"S","seq":1,"domain":{"a":[1,2]}}`, pubAck{Stream: "S", Sequence: 1}, true, false},
	{`{"error":{"code":-1,"err_code":1}}`, pubAck{Error: &jetstream.APIError{Code: -1, ErrorCode: 1}}, true, false},
	// Invalid.
	{``, pubAck{}, false, false},
	{`{"stream":"S","seq":1}x`, pubAck{}, false, false},
	{`{"stream":"S","seq":01}`, pubAck{}, false, false},
	{`{"stream":"S","seq":1.5}`, pubAck{}, false, false},
	{`{"stream":"S","seq":18446744073709551616}`, pubAck{}, false, false},
	{`{"stream":"S","seq":-1}`, pubAck{}, false, false},
	{`{"stream":"S","seq":"1"}`, pubAck{}, false, false},
	{`{"error":{"code":1,"err_code":65536}}`, pubAck{}, false, false},
	{`{"stream":"S",}`, pubAck{}, false, false},
	{`{"stream":"S"`, pubAck{}, false, false},
}

func internNew(b []byte) string { return string(b) }

func TestParsePubAck(t *testing.T) {
	for _, c := range pubAckCases {
		got, ok := parsePubAck([]byte(c.in), internNew)
		if ok != c.ok || ok && !reflect.DeepEqual(got, c.want) {
			t.Errorf("parsePubAck(%s) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
		if _, fast := fastPubAck([]byte(c.in), internNew); fast != c.fast {
			t.Errorf("fastPubAck(%s) read it: %v, want %v", c.in, fast, c.fast)
		}
	}
}

// The server's answers are read without allocating (stream names are
// interned by the publisher).
func TestParsePubAckAllocs(t *testing.T) {
	ok := []byte(`{"stream":"t1-enriched","seq":42,"duplicate":true}`)
	name := "t1-enriched"
	intern := func([]byte) string { return name }
	if n := testing.AllocsPerRun(100, func() { parsePubAck(ok, intern) }); n != 0 {
		t.Fatalf("parsing a pub ack allocates %v times", n)
	}
}

// FuzzParsePubAck holds parsePubAck to encoding/json's reading of the same
// bytes into the same struct, on every input.
func FuzzParsePubAck(f *testing.F) {
	for _, c := range pubAckCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want pubAck
		wantOK := json.Unmarshal(data, &want) == nil
		got, ok := parsePubAck(data, internNew)
		if ok != wantOK || ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("parsePubAck(%q) = %+v, %v; encoding/json: %+v, %v", data, got, ok, want, wantOK)
		}
		if fast, ok := fastPubAck(data, internNew); ok && !reflect.DeepEqual(fast, want) {
			t.Fatalf("fastPubAck(%q) = %+v; encoding/json: %+v, %v", data, fast, want, wantOK)
		}
	})
}

func BenchmarkParsePubAck(b *testing.B) {
	data := []byte(`{"stream":"t1-enriched","seq":123456,"duplicate":true}`)
	name := "t1-enriched"
	intern := func([]byte) string { return name }
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			parsePubAck(data, intern)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var pa pubAck
			_ = json.Unmarshal(data, &pa)
		}
	})
}
