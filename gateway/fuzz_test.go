package gateway

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

// The fuzz targets feed arbitrary bodies to decodeBody under one
// Content-Type each, seeded from the decoder tables. decodeBody must never
// panic, must refuse with 400, 413 or 415 only, and every event it accepts
// must survive the wire: it encodes with AppendMsgpack, decodes back with
// schemas' Event.DecodeMsgpack, and re-encodes to the same bytes.
//
//	go test -run='^$' -fuzz=FuzzDecodeJSON -fuzztime=20s ./gateway/
//
// Inputs that once failed are kept in testdata/fuzz/<target>/ and run with
// every go test.

const fuzzMaxEvents = 64

// seedFuzz adds the bodies of the table cases with Content-Type ct.
func seedFuzz(f *testing.F, ct string, cases []decodeCase) {
	f.Helper()
	n := 0
	for _, c := range cases {
		if c.ct == ct && c.hdr == nil {
			f.Add([]byte(c.body), c.kind == schemas.KindTrade)
			n++
		}
	}
	if n == 0 {
		f.Fatalf("no seeds for %s", ct)
	}
}

func fuzzDecode(t *testing.T, ct string, body []byte, trade bool) {
	kind := schemas.KindQuote
	if trade {
		kind = schemas.KindTrade
	}
	h := http.Header{"Content-Type": {ct}}
	// decodeBody aliases body in the events: keep a copy to check that it
	// does not write to it.
	orig := bytes.Clone(body)
	evs, single, err := decodeBody(kind, h, body, fuzzMaxEvents, nil)
	if !bytes.Equal(orig, body) {
		t.Fatal("decodeBody modified the body")
	}
	if err != nil {
		switch err.status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("status %d (%s)", err.status, err.detail)
		}
		if err.detail == "" {
			t.Fatal("error without detail")
		}
		return
	}
	if len(evs) > fuzzMaxEvents {
		t.Fatalf("%d events, max %d", len(evs), fuzzMaxEvents)
	}
	if single && len(evs) != 1 {
		t.Fatalf("single with %d events", len(evs))
	}
	for i := range evs {
		checkRoundTrip(t, &evs[i], kind)
	}
}

// checkRoundTrip encodes ev, decodes it with schemas and re-encodes it.
func checkRoundTrip(t *testing.T, ev *schemas.Event, kind schemas.Kind) {
	t.Helper()
	if ev.Kind != kind {
		t.Fatalf("event of kind %v on the %v path", ev.Kind, kind)
	}
	enc := ev.AppendMsgpack(nil)
	var back schemas.Event
	r := schemas.NewReader(enc)
	if err := back.DecodeMsgpack(&r); err != nil {
		t.Fatalf("decoding %+v back: %v", ev, err)
	}
	if !r.Done() || r.Err() != nil {
		t.Fatalf("decoding %+v back: %d trailing bytes, err %v", ev, len(r.Rest()), r.Err())
	}
	if back.ID != ev.ID || back.Source != ev.Source || back.Type != ev.Type || back.Subject != ev.Subject ||
		back.Time != ev.Time || back.DataSchema != ev.DataSchema || back.Known != ev.Known || back.Kind != ev.Kind {
		t.Fatalf("attributes changed on the wire:\n sent %+v\n read %+v", ev, back)
	}
	if !ev.Known {
		return // an unknown version's data is left for the worker to reject
	}
	if again := back.AppendMsgpack(nil); !bytes.Equal(again, enc) {
		t.Fatalf("re-encoding differs:\n%x\n%x\nevent %+v", enc, again, ev)
	}
	switch kind {
	case schemas.KindQuote:
		if back.Quote.Present != ev.Quote.Present || back.Quote.Invalid != ev.Quote.Invalid {
			t.Fatalf("quote fields changed: %+v -> %+v", ev.Quote, back.Quote)
		}
	case schemas.KindTrade:
		if back.Trade.Present != ev.Trade.Present || back.Trade.Invalid != ev.Trade.Invalid {
			t.Fatalf("trade fields changed: %+v -> %+v", ev.Trade, back.Trade)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	seedFuzz(f, "application/json", jsonDecodeCases())
	f.Fuzz(func(t *testing.T, body []byte, trade bool) { fuzzDecode(t, "application/json", body, trade) })
}

func FuzzDecodeNDJSON(f *testing.F) {
	seedFuzz(f, "application/x-ndjson", ndjsonDecodeCases())
	f.Fuzz(func(t *testing.T, body []byte, trade bool) { fuzzDecode(t, "application/x-ndjson", body, trade) })
}

func FuzzDecodeMsgpackBody(f *testing.F) {
	seedFuzz(f, "application/msgpack", msgpackDecodeCases(f))
	f.Fuzz(func(t *testing.T, body []byte, trade bool) { fuzzDecode(t, "application/msgpack", body, trade) })
}

func FuzzDecodeCloudEventJSON(f *testing.F) {
	seedFuzz(f, "application/cloudevents+json", ceDecodeCases())
	f.Fuzz(func(t *testing.T, body []byte, trade bool) { fuzzDecode(t, "application/cloudevents+json", body, trade) })
}

func FuzzDecodeCEBatch(f *testing.F) {
	seedFuzz(f, "application/cloudevents-batch+json", ceDecodeCases())
	f.Fuzz(func(t *testing.T, body []byte, trade bool) {
		fuzzDecode(t, "application/cloudevents-batch+json", body, trade)
	})
}
