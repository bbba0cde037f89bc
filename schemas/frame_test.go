package schemas_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

func TestBatchFrame(t *testing.T) {
	for _, n := range []int{0, 1, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			frame := schemas.BatchFrameHeader(nil)
			want := make([]schemas.Event, n)
			for i := range want {
				if i%3 == 2 {
					want[i] = sampleTrade()
				} else {
					want[i] = sampleQuote()
				}
				want[i].ID = fmt.Sprintf("ev-%d", i)
				want[i].Seq = uint32(i)
				frame = want[i].AppendMsgpack(frame)
			}
			schemas.FinishBatchFrame(frame, n)
			r := schemas.NewReader(frame)
			count, err := schemas.ReadBatchFrame(&r)
			if err != nil || count != n {
				t.Fatalf("ReadBatchFrame = %d, %v; want %d", count, err, n)
			}
			var ev schemas.Event
			for i := 0; i < count; i++ {
				if err := ev.DecodeMsgpack(&r); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if !sameEvent(&ev, &want[i]) {
					t.Fatalf("event %d\n got %+v\nwant %+v", i, ev, want[i])
				}
			}
			if !r.Done() || r.Err() != nil {
				t.Fatalf("%d bytes left, %v", len(r.Rest()), r.Err())
			}
		})
	}
}

// TestBatchFrameStartedMidBuffer checks that a frame started after other
// bytes is patched in place when FinishBatchFrame gets the frame's slice.
func TestBatchFrameStartedMidBuffer(t *testing.T) {
	buf := []byte("xx")
	buf = schemas.BatchFrameHeader(buf)
	buf = encodeEvent(sampleQuote(), buf)
	schemas.FinishBatchFrame(buf[2:], 1)
	r := schemas.NewReader(buf[2:])
	if n, err := schemas.ReadBatchFrame(&r); n != 1 || err != nil {
		t.Fatalf("ReadBatchFrame = %d, %v", n, err)
	}
}

func TestReadBatchFrameErrors(t *testing.T) {
	for _, in := range [][]byte{nil, {0x80}, {0xdd, 0, 0, 0, 5, 0xc0}} {
		r := schemas.NewReader(in)
		if n, err := schemas.ReadBatchFrame(&r); err == nil || n != 0 {
			t.Errorf("ReadBatchFrame(% x) = %d, %v; want an error", in, n, err)
		}
	}
}

func TestResultRoundTrip(t *testing.T) {
	en := sampleEnrichedQuote()
	errs := []schemas.FieldError{
		{Field: "bid", Code: schemas.CodeCrossedQuote, Detail: "bid 2 is above ask 1"},
		{Field: "ts", Code: schemas.CodeStale, Detail: ""},
	}
	frame := schemas.AppendArrayHeader(nil, 3)
	frame = schemas.AppendResultOK(frame, 42, 0, &en)
	frame = schemas.AppendResultInvalid(frame, 1<<64-1, 1<<32-1, errs)
	frame = schemas.AppendResultInvalid(frame, 7, 1, nil)

	r := schemas.NewReader(frame)
	if n := r.ArrayHeader(); n != 3 {
		t.Fatalf("ArrayHeader = %d, %v", n, r.Err())
	}
	var res schemas.Result
	if err := res.DecodeMsgpack(&r); err != nil {
		t.Fatal(err)
	}
	if res.Corr != 42 || res.Seq != 0 || res.Status != 200 || len(res.Errors) != 0 {
		t.Errorf("OK result %+v", res)
	}
	got := decodeEnriched(t, res.Event)
	if !sameEnriched(&got, &en) {
		t.Errorf("OK result's event\n got %+v\nwant %+v", got, en)
	}

	if err := res.DecodeMsgpack(&r); err != nil {
		t.Fatal(err)
	}
	if res.Corr != 1<<64-1 || res.Seq != 1<<32-1 || res.Status != 422 || res.Event != nil || !reflect.DeepEqual(res.Errors, errs) {
		t.Errorf("invalid result %+v", res)
	}
	storage := &res.Errors[0]
	if err := res.DecodeMsgpack(&r); err != nil {
		t.Fatal(err)
	}
	if res.Corr != 7 || res.Status != 422 || len(res.Errors) != 0 || cap(res.Errors) == 0 || &res.Errors[:1][0] != storage {
		t.Errorf("invalid result without errors %+v (storage reused: %v)", res, cap(res.Errors) > 0)
	}
	if !r.Done() {
		t.Errorf("%d bytes left", len(r.Rest()))
	}
}

func TestResultDecode(t *testing.T) {
	// Unknown keys are skipped, nil event is no event.
	in := eventMap("status", 200, "corr", 5, "future", eventMap("a", 1), "event", nil, "seq", 2)
	var res schemas.Result
	r := schemas.NewReader(in)
	if err := res.DecodeMsgpack(&r); err != nil || res.Corr != 5 || res.Seq != 2 || res.Status != 200 || res.Event != nil {
		t.Fatalf("Result = %+v, %v", res, err)
	}
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{eventMap("seq", []byte{0xce, 0xff, 0xff, 0xff, 0xff}, "corr", -1), schemas.ErrOverflow},
		{eventMap("errors", eventMap()), schemas.ErrType},
		{eventMap("errors", []byte{0x91, 0x01}), schemas.ErrType},
		{[]byte{0x84}, schemas.ErrShortBuffer},
	} {
		r := schemas.NewReader(tc.in)
		if err := res.DecodeMsgpack(&r); !errors.Is(err, tc.want) {
			t.Errorf("DecodeMsgpack(% x) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestDeadLetterRoundTrip(t *testing.T) {
	raw := encodeEvent(sampleQuote(), nil)
	errs := []schemas.FieldError{{Field: "type", Code: schemas.CodeUnknownVersion, Detail: "v2"}}
	tests := []struct {
		name string
		errs []schemas.FieldError
		raw  []byte
	}{
		{"event", errs, raw},
		{"no event", errs, nil},
		{"no errors", nil, raw},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := schemas.AppendDeadLetter(nil, tc.errs, tc.raw)
			var d schemas.DeadLetter
			r := schemas.NewReader(b)
			if err := d.DecodeMsgpack(&r); err != nil || !r.Done() {
				t.Fatalf("DecodeMsgpack: %v", err)
			}
			if !reflect.DeepEqual(d.Errors, tc.errs) || string(d.Event) != string(tc.raw) || (tc.raw == nil) != (d.Event == nil) {
				t.Errorf("dead letter %+v", d)
			}
			if tc.raw != nil {
				ev := decodeEvent(t, d.Event)
				want := sampleQuote()
				if !sameEvent(&ev, &want) {
					t.Errorf("dead letter's event %+v", ev)
				}
			}
		})
	}
	var d schemas.DeadLetter
	r := schemas.NewReader([]byte{0x82, 0xa6, 'e', 'r', 'r', 'o', 'r', 's'})
	if err := d.DecodeMsgpack(&r); !errors.Is(err, schemas.ErrShortBuffer) {
		t.Errorf("truncated dead letter: %v", err)
	}
}

// TestAppendResultOKRaw checks that copying an encoded enriched event gives
// the same bytes as encoding it into the result.
func TestAppendResultOKRaw(t *testing.T) {
	for _, en := range []schemas.Enriched{sampleEnrichedQuote(), sampleEnrichedTrade()} {
		want := schemas.AppendResultOK(nil, 1<<32|7, 3, &en)
		got := schemas.AppendResultOKRaw(nil, 1<<32|7, 3, en.AppendMsgpack(nil))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: raw result differs:\n got %x\nwant %x", en.Type, got, want)
		}
	}
}

func TestParseSent(t *testing.T) {
	f := func(v string, want int64) {
		t.Helper()
		if got := schemas.ParseSent(v); got != want {
			t.Errorf("ParseSent(%q) = %d, want %d", v, got, want)
		}
	}
	f("1765000000123456789", 1765000000123456789)
	f("0", 0)
	f("", 0)
	f("-5", 0)
	f("12a", 0)
	f("99999999999999999999", 0) // past int64: 20 digits
}
