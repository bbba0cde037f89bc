package schemas_test

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/sluice-dev/sluice/schemas"
)

// TestInteropPrimitivesToMsgpackV5 decodes what our appenders write with
// msgpack/v5, the most used Go MessagePack library.
func TestInteropPrimitivesToMsgpackV5(t *testing.T) {
	ints := []int64{0, 127, 128, 255, 256, math.MaxUint16, math.MaxUint16 + 1, math.MaxUint32, math.MaxUint32 + 1,
		math.MaxInt64, -1, -32, -33, math.MinInt8, math.MinInt8 - 1, math.MinInt16, math.MinInt16 - 1,
		math.MinInt32, math.MinInt32 - 1, math.MinInt64}
	for _, v := range ints {
		var got int64
		if err := msgpack.Unmarshal(schemas.AppendInt(nil, v), &got); err != nil || got != v {
			t.Errorf("int %d: msgpack/v5 read %d, %v", v, got, err)
		}
	}
	for _, v := range []uint64{0, 200, math.MaxUint32 + 1, math.MaxUint64} {
		var got uint64
		if err := msgpack.Unmarshal(schemas.AppendUint(nil, v), &got); err != nil || got != v {
			t.Errorf("uint %d: msgpack/v5 read %d, %v", v, got, err)
		}
	}
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := string(bytes.Repeat([]byte{'z'}, n))
		var got string
		if err := msgpack.Unmarshal(schemas.AppendString(nil, s), &got); err != nil || got != s {
			t.Errorf("string of %d: msgpack/v5 read %d bytes, %v", n, len(got), err)
		}
	}
	for _, ns := range []int64{0, sampleTime, -1, time.Date(1900, 1, 1, 0, 0, 0, 7, time.UTC).UnixNano(), math.MaxInt64, math.MinInt64} {
		var got time.Time
		if err := msgpack.Unmarshal(schemas.AppendTimestamp(nil, ns), &got); err != nil || got.UnixNano() != ns {
			t.Errorf("timestamp %d: msgpack/v5 read %v, %v", ns, got, err)
		}
	}
	var f float64
	if err := msgpack.Unmarshal(schemas.AppendFloat64(nil, 189.52), &f); err != nil || f != 189.52 {
		t.Errorf("float: msgpack/v5 read %g, %v", f, err)
	}
	for _, n := range []int{0, 15, 16, 65535, 65536} {
		arr := schemas.AppendArrayHeader(nil, n)
		for i := 0; i < n; i++ {
			arr = schemas.AppendNil(arr)
		}
		var got []any
		if err := msgpack.Unmarshal(arr, &got); err != nil || len(got) != n {
			t.Errorf("array of %d: msgpack/v5 read %d, %v", n, len(got), err)
		}
	}
}

// TestInteropPrimitivesFromMsgpackV5 reads with our Reader what msgpack/v5
// writes for every Go number type.
func TestInteropPrimitivesFromMsgpackV5(t *testing.T) {
	ints := []any{int8(-100), int8(5), int16(-30000), int16(300), int32(-2e9), int32(70000), int64(math.MinInt64),
		uint8(200), uint16(60000), uint32(4e9), uint64(math.MaxInt64), int(-7), uint(9)}
	for _, v := range ints {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		r := schemas.NewReader(b)
		want := reflect.ValueOf(v)
		var got int64
		if got = r.Int64(); r.Err() != nil || !r.Done() {
			t.Errorf("%T %v (% x): %v", v, v, b, r.Err())
			continue
		}
		if want.CanInt() && got != want.Int() || want.CanUint() && uint64(got) != want.Uint() {
			t.Errorf("%T %v (% x): read %d", v, v, b, got)
		}
	}
	for _, v := range []any{float32(1.25), float64(-0.5), float32(math.Inf(1))} {
		b, _ := msgpack.Marshal(v)
		r := schemas.NewReader(b)
		got := r.Float64()
		if want := reflect.ValueOf(v).Float(); got != want || r.Err() != nil {
			t.Errorf("%T %v: read %g, %v", v, v, got, r.Err())
		}
	}
	times := []time.Time{
		time.Unix(1700000000, 0),                    // 32-bit form
		time.Unix(1700000000, 5),                    // 64-bit form
		time.Unix(-1, 999999999),                    // 96-bit form
		time.Date(1901, 2, 3, 4, 5, 6, 7, time.UTC), // 96-bit form, pre-1970
	}
	for _, tm := range times {
		b, _ := msgpack.Marshal(tm)
		r := schemas.NewReader(b)
		if got := r.Timestamp(); got != tm.UnixNano() || r.Err() != nil {
			t.Errorf("time %v (% x): read %d, %v", tm, b, got, r.Err())
		}
	}
}

// TestInteropEventToMsgpackV5 shows what a generic MessagePack reader in any
// language sees: the CloudEvents attributes by their spec names.
func TestInteropEventToMsgpackV5(t *testing.T) {
	ev := sampleQuote()
	ev.DataSchema = "urn:sluice:jsonschema:marketdata.quote.v1"
	var got map[string]any
	if err := msgpack.Unmarshal(ev.AppendMsgpack(nil), &got); err != nil {
		t.Fatal(err)
	}
	tm, ok := got["time"].(time.Time)
	if !ok || tm.UnixNano() != sampleTime {
		t.Errorf("time = %#v, want time.Time %d", got["time"], sampleTime)
	}
	delete(got, "time")
	want := map[string]any{
		"specversion":     "1.0",
		"id":              "q-0001",
		"source":          "/gateway/gw-1",
		"type":            "marketdata.quote.v1",
		"subject":         "AAPL",
		"datacontenttype": "application/msgpack",
		"dataschema":      "urn:sluice:jsonschema:marketdata.quote.v1",
		"sluicerecv":      sampleRecv,
		"sluicecorr":      uint64(42),
		"sluiceseq":       uint64(3),
		"data": map[string]any{
			"symbol": "AAPL", "bid": 189.5, "ask": 189.52, "bid_size": int64(100), "ask_size": int64(200),
			"venue": "XNAS", "ts": sampleTS,
		},
	}
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Errorf("msgpack/v5 sees\n%#v\nwant\n%#v", normalize(got), normalize(want))
	}
}

func TestInteropTradeAndEnrichedToMsgpackV5(t *testing.T) {
	tr := sampleTrade()
	var got map[string]any
	if err := msgpack.Unmarshal(tr.AppendMsgpack(nil), &got); err != nil {
		t.Fatal(err)
	}
	data := got["data"].(map[string]any)
	if c, _ := data["conditions"].([]any); len(c) != 2 || c[0] != "@" || c[1] != "F" {
		t.Errorf("conditions = %#v", data["conditions"])
	}
	if _, ok := got["sluicecorr"]; ok {
		t.Error("sluicecorr written for an event nobody waits for")
	}
	en := sampleEnrichedQuote()
	got = nil
	if err := msgpack.Unmarshal(en.AppendMsgpack(nil), &got); err != nil {
		t.Fatal(err)
	}
	data = got["data"].(map[string]any)
	inst := data["instrument"].(map[string]any)
	if got["type"] != schemas.TypeQuoteEnrichedV1 || data["mid"] != 189.51 || inst["isin"] != "US0378331005" ||
		inst["symbol"] != "AAPL" || normalize(data["enriched_at"]) != sampleRecv+40_000 {
		t.Errorf("enriched quote as msgpack/v5 sees it: %#v", got)
	}
}

// TestInteropEventFromMsgpackV5 decodes an event that msgpack/v5 wrote from
// a generic map, with the number types another producer might pick.
func TestInteropEventFromMsgpackV5(t *testing.T) {
	tm := time.Date(2025, 1, 2, 15, 4, 5, 123456789, time.UTC)
	in := map[string]any{
		"specversion": "1.0", "id": "x1", "source": "/py", "type": "marketdata.quote.v1", "subject": "MSFT",
		"time": tm, "datacontenttype": "application/msgpack", "sluicecorr": uint16(9), "sluiceseq": int8(1),
		"sluicerecv": tm.UnixNano(), "partitionkey": "ignored",
		"data": map[string]any{
			"symbol": "MSFT", "bid": float32(410.5), "ask": int16(411), "bid_size": int8(5), "ask_size": uint16(60000),
			"venue": "XNAS", "ts": tm, "extra": []any{1, "two", nil},
		},
	}
	b, err := msgpack.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ev := decodeEvent(t, b)
	want := schemas.Event{
		ID: "x1", Source: "/py", Type: schemas.TypeQuoteV1, Subject: "MSFT", Time: tm.UnixNano(),
		ReceivedAt: tm.UnixNano(), Corr: 9, Seq: 1, Kind: schemas.KindQuote, Known: true,
		Quote: schemas.Quote{Symbol: "MSFT", Bid: 410.5, Ask: 411, BidSize: 5, AskSize: 60000, Venue: "XNAS",
			TS: tm.UnixNano(), Present: allQuoteFields},
	}
	if !sameEvent(&ev, &want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", ev, want)
	}
	if errs := schemas.Validate(&ev, tm.UnixNano(), schemas.Limits{}, nil); len(errs) != 0 {
		t.Errorf("Validate: %+v", errs)
	}
}

// normalize maps every integer type to int64 (or uint64 above MaxInt64), as
// msgpack/v5 picks the smallest type that holds a value.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = normalize(e)
		}
		return s
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return rv.Int()
	case rv.CanUint() && rv.Uint() <= math.MaxInt64:
		return int64(rv.Uint())
	}
	return v
}
