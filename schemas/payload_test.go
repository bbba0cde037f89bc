package schemas_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

func TestPayloadDecode(t *testing.T) {
	q := sampleQuote().Quote
	var got schemas.Quote
	got.Venue = "stale" // reset first
	r := schemas.NewReader(q.AppendMsgpack(nil))
	if err := got.DecodeMsgpack(&r); err != nil || !sameQuote(&got, &q) || !r.Done() {
		t.Errorf("quote %+v, %v", got, err)
	}

	tr := sampleTrade().Trade
	var gotT schemas.Trade
	r = schemas.NewReader(tr.AppendMsgpack(nil))
	if err := gotT.DecodeMsgpack(&r); err != nil || !sameTrade(&gotT, &tr) {
		t.Errorf("trade %+v, %v", gotT, err)
	}
	// The conditions' storage is reused by the next decode.
	first := &gotT.Conditions[0]
	r = schemas.NewReader(tr.AppendMsgpack(nil))
	if err := gotT.DecodeMsgpack(&r); err != nil || &gotT.Conditions[0] != first {
		t.Errorf("conditions storage not reused: %v", err)
	}

	// Wrong types are marked, not errors; nil is absent, as null is in
	// JSON bodies; malformed input is an error.
	r = schemas.NewReader(eventMap("price", "x", "size", nil))
	if err := gotT.DecodeMsgpack(&r); err != nil || gotT.Invalid != schemas.FPrice || gotT.Present != schemas.FPrice || len(gotT.Conditions) != 0 {
		t.Errorf("trade %+v, %v", gotT, err)
	}
	r = schemas.NewReader([]byte{0x82, 0xa3, 'b', 'i', 'd'})
	if err := got.DecodeMsgpack(&r); !errors.Is(err, schemas.ErrShortBuffer) {
		t.Errorf("truncated quote: %v", err)
	}
}

func FuzzPayloadDecode(f *testing.F) {
	q, tr := sampleQuote().Quote, sampleTrade().Trade
	f.Add(q.AppendMsgpack(nil), true)
	f.Add(tr.AppendMsgpack(nil), false)
	f.Add(eventMap("conditions", []byte{0x91, 0x01}, "ts", nil), false)
	f.Fuzz(func(t *testing.T, in []byte, quote bool) {
		r := schemas.NewReader(in)
		if quote {
			var q, q2 schemas.Quote
			if q.DecodeMsgpack(&r) != nil {
				return
			}
			// Invalid fields travel as nil, which a client body
			// decodes as absent.
			r2 := schemas.NewReader(q.AppendMsgpack(nil))
			q.Present &^= q.Invalid
			q.Invalid = 0
			if err := q2.DecodeMsgpack(&r2); err != nil || !sameQuote(&q, &q2) {
				t.Fatalf("quote round trip: %+v, %v; want %+v", q2, err, q)
			}
			return
		}
		var tr, tr2 schemas.Trade
		if tr.DecodeMsgpack(&r) != nil {
			return
		}
		r2 := schemas.NewReader(tr.AppendMsgpack(nil))
		tr.Present &^= tr.Invalid
		tr.Invalid = 0
		if err := tr2.DecodeMsgpack(&r2); err != nil || !sameTrade(&tr, &tr2) {
			t.Fatalf("trade round trip: %+v, %v; want %+v", tr2, err, tr)
		}
	})
}

func TestLoadReportRoundTrip(t *testing.T) {
	want := schemas.LoadReport{Worker: "w-1", Group: "default", PendingEvents: 1200, PendingBytes: 1 << 20,
		InFlight: 100, Rate: 250000.5, MaxRate: 900000, IntervalMS: 250, Stopping: true,
		Origins:         []schemas.OriginLoad{{Reply: "_INBOX.a.quote", Events: 1000}, {Reply: "_INBOX.b.quote", Events: 300}},
		ConsumerPending: 4096, ConsumerAckPending: 12}
	var got schemas.LoadReport
	r := schemas.NewReader(want.AppendMsgpack(nil))
	if err := got.DecodeMsgpack(&r); err != nil || !reflect.DeepEqual(got, want) || !r.Done() {
		t.Errorf("load report %+v, %v", got, err)
	}
	if s := schemas.MustSubjects("").LoadAll(); s != "sluice.load.*" {
		t.Errorf("LoadAll = %q", s)
	}
	r = schemas.NewReader(eventMap("rate", "fast"))
	if err := got.DecodeMsgpack(&r); !errors.Is(err, schemas.ErrType) {
		t.Errorf("rate of the wrong type: %v", err)
	}
}

func TestDoneFrameRoundTrip(t *testing.T) {
	want := []uint64{1, 2, 1 << 40, 7}
	frame := schemas.AppendDoneFrame(nil, want)
	var got []uint64
	if err := schemas.ReadDoneFrame(frame, func(s uint64) { got = append(got, s) }); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("done frame: %v, %v; want %v", got, err, want)
	}
	if err := schemas.ReadDoneFrame(frame[:len(frame)-2], func(uint64) {}); err == nil {
		t.Fatal("a truncated done frame was read without error")
	}
}

func FuzzLoadReport(f *testing.F) {
	lr := schemas.LoadReport{Worker: "w", Group: "g", PendingEvents: -1, Rate: 1.5, Stopping: true,
		Origins: []schemas.OriginLoad{{Reply: "_INBOX.x.trade", Events: 3}}, ConsumerPending: 7, ConsumerAckPending: -2}
	f.Add(lr.AppendMsgpack(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		var lr, lr2 schemas.LoadReport
		r := schemas.NewReader(in)
		if lr.DecodeMsgpack(&r) != nil {
			return
		}
		r2 := schemas.NewReader(lr.AppendMsgpack(nil))
		if err := lr2.DecodeMsgpack(&r2); err != nil || lr2.Worker != lr.Worker || lr2.PendingEvents != lr.PendingEvents ||
			!sameFloat(lr2.Rate, lr.Rate) || lr2.Stopping != lr.Stopping || !reflect.DeepEqual(lr2.Origins, lr.Origins) ||
			lr2.ConsumerPending != lr.ConsumerPending || lr2.ConsumerAckPending != lr.ConsumerAckPending {
			t.Fatalf("round trip: %+v, %v; want %+v", lr2, err, lr)
		}
	})
}
