package loadgen

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

// TestPayloadShapes checks every body format: well-formed, the right number
// of events, the right headers.
func TestPayloadShapes(t *testing.T) {
	cases := []struct {
		o     PayloadOptions
		ctype string
		count func([]byte) int
	}{
		{PayloadOptions{Format: FormatJSON}, "application/json", func(b []byte) int { return jsonCount(t, b) }},
		{PayloadOptions{Format: FormatJSON, Batch: 10}, "application/json", func(b []byte) int { return jsonCount(t, b) }},
		{PayloadOptions{Format: FormatNDJSON, Batch: 10}, "application/x-ndjson", func(b []byte) int {
			n := 0
			for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
				n += jsonCount(t, l)
			}
			return n
		}},
		{PayloadOptions{Format: FormatMsgpack, Batch: 10}, "application/msgpack", func(b []byte) int {
			r := schemas.NewReader(b)
			return r.ArrayHeader()
		}},
		{PayloadOptions{Format: FormatCEBinary}, "application/json", func(b []byte) int { return jsonCount(t, b) }},
	}
	for _, c := range cases {
		t.Run(string(c.o.Format), func(t *testing.T) {
			c.o.Prefer, c.o.Priority, c.o.TradeShare = true, "low", 0.5
			p := testPayloads(t, c.o)
			for i := range uint64(20) {
				_, body, h := p.Sample(i)
				if got, want := c.count(body), max(c.o.Batch, 1); got != want {
					t.Fatalf("body %d holds %d events, want %d: %s", i, got, want, body)
				}
				if h.Get("Content-Type") != c.ctype || h.Get("Prefer") != "return=representation" || h.Get(PriorityHeader) != "low" {
					t.Fatalf("headers %v", h)
				}
			}
			if err := p.Bind("http://127.0.0.1:1"); err != nil {
				t.Fatal(err)
			}
			req, _ := p.request(t.Context(), 7)
			if !strings.HasPrefix(req.URL.Path, "/v1/events/") || req.ContentLength == 0 {
				t.Fatalf("request %s %d", req.URL, req.ContentLength)
			}
			if c.o.Format == FormatCEBinary && !strings.HasSuffix(req.Header.Get("Ce-Id"), "-7") {
				t.Fatalf("ce-id %q", req.Header.Get("Ce-Id"))
			}
		})
	}
}

func jsonCount(t *testing.T, b []byte) int {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	if a, ok := v.([]any); ok {
		return len(a)
	}
	return 1
}

// TestPayloadValidity runs every generated event through sluice's own
// validation and enrichment: an event flagged invalid must be rejected and
// every other one enriched, so that the end-to-end counts can be checked.
func TestPayloadValidity(t *testing.T) {
	store := enrich.NewStore()
	store.Replace(enrich.Sample())
	en := &enrich.Enricher{Store: store}
	p := testPayloads(t, PayloadOptions{Format: FormatMsgpack, Batch: 50, Bodies: 40, TradeShare: 0.4,
		InvalidShare: 0.2, SampleEvery: 8})
	now := time.Now().UnixNano()
	var valid, invalid, observed int
	for i := range p.list {
		pl := &p.list[i]
		r := schemas.NewReader(pl.body)
		n := r.ArrayHeader()
		for j := range n {
			ev := schemas.Event{Kind: pl.kind, Known: true, Type: pl.kind.CEType()}
			var err error
			if pl.kind == schemas.KindQuote {
				err = ev.Quote.DecodeMsgpack(&r)
			} else {
				err = ev.Trade.DecodeMsgpack(&r)
			}
			if err != nil {
				t.Fatal(err)
			}
			errs := schemas.Validate(&ev, now, schemas.Limits{}, nil)
			if len(errs) == 0 {
				var out schemas.Enriched
				errs = en.Enrich(&ev, now, &out, errs)
			}
			wantInvalid := pl.flags[j]&flagInvalid != 0
			if (len(errs) > 0) != wantInvalid {
				t.Fatalf("body %d event %d: errors %v, flagged invalid %v", i, j, errs, wantInvalid)
			}
			if wantInvalid {
				invalid++
				if pl.flags[j]&flagObserved == 0 {
					t.Fatal("an invalid event is not observed")
				}
			} else {
				valid++
			}
			if pl.flags[j]&flagObserved != 0 {
				observed++
			}
		}
	}
	if invalid < 200 || invalid > 600 || observed >= valid+invalid || observed <= invalid {
		t.Fatalf("valid %d, invalid %d, observed %d", valid, invalid, observed)
	}
}

func TestPayloadOptionsErrors(t *testing.T) {
	for _, o := range []PayloadOptions{
		{Format: FormatCEBinary, Batch: 2},
		{TradeShare: 2},
		{InvalidShare: -1},
	} {
		if _, err := NewPayloads(o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Fatal("xml accepted")
	}
}

// TestPayloadMinimal: Minimal asks for a bare 202; Prefer, which waits for
// the result, takes precedence.
func TestPayloadMinimal(t *testing.T) {
	for _, c := range []struct {
		o    PayloadOptions
		want string
	}{
		{PayloadOptions{Minimal: true}, "return=minimal"},
		{PayloadOptions{Minimal: true, Prefer: true}, "return=representation"},
		{PayloadOptions{}, ""},
	} {
		_, _, h := testPayloads(t, c.o).Sample(0)
		if got := h.Get("Prefer"); got != c.want {
			t.Errorf("%+v: Prefer %q, want %q", c.o, got, c.want)
		}
	}
}
