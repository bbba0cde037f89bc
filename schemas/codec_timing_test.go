package schemas_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/sluice-dev/sluice/schemas"
)

// The benchmarks of the hot-path codecs, and of msgpack/v5 doing the same
// work two ways (reflection on a tagged struct, and a hand-written
// CustomEncoder/CustomDecoder), so that the choice of append-style codecs
// stands on numbers. Every variant writes and reads the same map: the
// CloudEvents attributes and a quote's data.

func BenchmarkEventQuoteEncode(b *testing.B) {
	ev := sampleQuote()
	buf := ev.AppendMsgpack(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendMsgpack(buf[:0])
	}
}

func BenchmarkEventQuoteDecode(b *testing.B) {
	raw := encodeEvent(sampleQuote(), nil)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var ev schemas.Event
	var r schemas.Reader
	for b.Loop() {
		r.Reset(raw)
		if err := ev.DecodeMsgpack(&r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventTradeDecode(b *testing.B) {
	raw := encodeEvent(sampleTrade(), nil)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var ev schemas.Event
	var r schemas.Reader
	for b.Loop() {
		r.Reset(raw)
		if err := ev.DecodeMsgpack(&r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnrichedQuoteEncode(b *testing.B) {
	en := sampleEnrichedQuote()
	buf := en.AppendMsgpack(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = en.AppendMsgpack(buf[:0])
	}
}

func BenchmarkValidate(b *testing.B) {
	for _, ev := range []schemas.Event{sampleQuote(), sampleTrade()} {
		b.Run(ev.Kind.String(), func(b *testing.B) {
			b.SetBytes(int64(len(ev.AppendMsgpack(nil))))
			b.ReportAllocs()
			errs := make([]schemas.FieldError, 0, 4)
			for b.Loop() {
				errs = schemas.Validate(&ev, validateNow, schemas.Limits{}, errs[:0])
			}
			if len(errs) != 0 {
				b.Fatal(errs)
			}
		})
	}
}

func BenchmarkEventJSON(b *testing.B) {
	en := sampleEnrichedQuote()
	raw := en.AppendMsgpack(nil)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		buf, _ = schemas.AppendEventJSON(buf[:0], raw)
	}
}

// BenchmarkBatchFrame100 encodes and decodes a batch frame of 100 quotes:
// the gateway's and the worker's codec cost per batch.
func BenchmarkBatchFrame100(b *testing.B) {
	ev := sampleQuote()
	build := func(frame []byte) []byte {
		frame = schemas.BatchFrameHeader(frame[:0])
		for range 100 {
			frame = ev.AppendMsgpack(frame)
		}
		schemas.FinishBatchFrame(frame, 100)
		return frame
	}
	frame := build(nil)
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		buf := make([]byte, 0, len(frame))
		for b.Loop() {
			buf = build(buf)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		var got schemas.Event
		for b.Loop() {
			r := schemas.NewReader(frame)
			n, err := schemas.ReadBatchFrame(&r)
			if err != nil || n != 100 {
				b.Fatal(n, err)
			}
			for range n {
				if err := got.DecodeMsgpack(&r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// v5Event is the quote event as a msgpack/v5 user would write it: a tagged
// struct for reflection, with omitempty where our encoder leaves keys out.
type v5Event struct {
	SpecVersion     string    `msgpack:"specversion"`
	ID              string    `msgpack:"id"`
	Source          string    `msgpack:"source"`
	Type            string    `msgpack:"type"`
	Subject         string    `msgpack:"subject"`
	Time            time.Time `msgpack:"time"`
	DataContentType string    `msgpack:"datacontenttype"`
	DataSchema      string    `msgpack:"dataschema,omitempty"`
	ReceivedAt      int64     `msgpack:"sluicerecv,omitempty"`
	Corr            uint64    `msgpack:"sluicecorr,omitempty"`
	Seq             uint32    `msgpack:"sluiceseq,omitempty"`
	Data            v5Quote   `msgpack:"data"`
}

type v5Quote struct {
	Symbol  string  `msgpack:"symbol"`
	Bid     float64 `msgpack:"bid"`
	Ask     float64 `msgpack:"ask"`
	BidSize int64   `msgpack:"bid_size"`
	AskSize int64   `msgpack:"ask_size"`
	Venue   string  `msgpack:"venue,omitempty"`
	TS      int64   `msgpack:"ts,omitempty"`
}

func newV5Event() v5Event {
	ev := sampleQuote()
	q := ev.Quote
	return v5Event{
		SpecVersion: schemas.SpecVersion, ID: ev.ID, Source: ev.Source, Type: ev.Type, Subject: ev.Subject,
		Time: time.Unix(0, ev.Time).UTC(), DataContentType: schemas.ContentTypeMsgpack,
		ReceivedAt: ev.ReceivedAt, Corr: ev.Corr, Seq: ev.Seq,
		Data: v5Quote{Symbol: q.Symbol, Bid: q.Bid, Ask: q.Ask, BidSize: q.BidSize, AskSize: q.AskSize, Venue: q.Venue, TS: q.TS},
	}
}

// v5HandEvent has the same fields with hand-written msgpack/v5 methods: the
// fastest way to use that library, as DESIGN.md measured it. key is scratch
// space that lets the decoder compare keys without allocating.
type v5HandEvent struct {
	v5Event
	key [32]byte
}

var (
	_ msgpack.CustomEncoder = (*v5HandEvent)(nil)
	_ msgpack.CustomDecoder = (*v5HandEvent)(nil)
)

// v5Writer keeps the first error of a run of msgpack/v5 writes.
type v5Writer struct {
	enc *msgpack.Encoder
	err error
}

func (w *v5Writer) str(s string) {
	if w.err == nil {
		w.err = w.enc.EncodeString(s)
	}
}

func (w *v5Writer) kv(k, v string) { w.str(k); w.str(v) }

func (w *v5Writer) do(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (e *v5HandEvent) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 11
	if e.DataSchema != "" {
		n++
	}
	w := v5Writer{enc: enc}
	w.do(enc.EncodeMapLen(n))
	w.kv("specversion", e.SpecVersion)
	w.kv("id", e.ID)
	w.kv("source", e.Source)
	w.kv("type", e.Type)
	w.kv("subject", e.Subject)
	w.str("time")
	w.do(enc.EncodeTime(e.Time))
	w.kv("datacontenttype", e.DataContentType)
	if e.DataSchema != "" {
		w.kv("dataschema", e.DataSchema)
	}
	w.str("sluicerecv")
	w.do(enc.EncodeInt(e.ReceivedAt))
	w.str("sluicecorr")
	w.do(enc.EncodeUint(e.Corr))
	w.str("sluiceseq")
	w.do(enc.EncodeUint(uint64(e.Seq)))
	q := &e.Data
	w.str("data")
	w.do(enc.EncodeMapLen(7))
	w.kv("symbol", q.Symbol)
	w.str("bid")
	w.do(enc.EncodeFloat64(q.Bid))
	w.str("ask")
	w.do(enc.EncodeFloat64(q.Ask))
	w.str("bid_size")
	w.do(enc.EncodeInt(q.BidSize))
	w.str("ask_size")
	w.do(enc.EncodeInt(q.AskSize))
	w.kv("venue", q.Venue)
	w.str("ts")
	w.do(enc.EncodeInt(q.TS))
	return w.err
}

// readKey reads a map key into e.key and returns it, aliasing e.key.
func (e *v5HandEvent) readKey(dec *msgpack.Decoder) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > len(e.key) {
		return nil, errors.New("msgpack: key too long")
	}
	return e.key[:n], dec.ReadFull(e.key[:n])
}

// DecodeMsgpack compares keys without allocating; string values are
// allocated, as a struct that owns its strings must.
func (e *v5HandEvent) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := e.readKey(dec)
		if err != nil {
			return err
		}
		switch string(k) {
		case "specversion":
			e.SpecVersion, err = dec.DecodeString()
		case "id":
			e.ID, err = dec.DecodeString()
		case "source":
			e.Source, err = dec.DecodeString()
		case "type":
			e.Type, err = dec.DecodeString()
		case "subject":
			e.Subject, err = dec.DecodeString()
		case "time":
			e.Time, err = dec.DecodeTime()
		case "datacontenttype":
			e.DataContentType, err = dec.DecodeString()
		case "dataschema":
			e.DataSchema, err = dec.DecodeString()
		case "sluicerecv":
			e.ReceivedAt, err = dec.DecodeInt64()
		case "sluicecorr":
			e.Corr, err = dec.DecodeUint64()
		case "sluiceseq":
			e.Seq, err = dec.DecodeUint32()
		case "data":
			err = e.decodeData(dec)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *v5HandEvent) decodeData(dec *msgpack.Decoder) error {
	q := &e.Data
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := e.readKey(dec)
		if err != nil {
			return err
		}
		switch string(k) {
		case "symbol":
			q.Symbol, err = dec.DecodeString()
		case "bid":
			q.Bid, err = dec.DecodeFloat64()
		case "ask":
			q.Ask, err = dec.DecodeFloat64()
		case "bid_size":
			q.BidSize, err = dec.DecodeInt64()
		case "ask_size":
			q.AskSize, err = dec.DecodeInt64()
		case "venue":
			q.Venue, err = dec.DecodeString()
		case "ts":
			q.TS, err = dec.DecodeInt64()
		default:
			err = dec.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// TestV5ComparisonIsFair checks that the msgpack/v5 variants of the
// benchmarks write an event our decoder reads as the sample, and read ours.
func TestV5ComparisonIsFair(t *testing.T) {
	want := sampleQuote()
	v := newV5Event()
	h := v5HandEvent{v5Event: v}
	reflected, err := msgpack.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	hand, err := msgpack.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"reflection": reflected, "hand-written": hand} {
		got := decodeEvent(t, b)
		if !sameEvent(&got, &want) {
			t.Errorf("%s: decoded %+v", name, got)
		}
	}
	ours := encodeEvent(want, nil)
	var rv v5Event
	var hv v5HandEvent
	if err := msgpack.Unmarshal(ours, &rv); err != nil || rv.Data != v.Data || !rv.Time.Equal(v.Time) || rv.Corr != v.Corr {
		t.Errorf("reflection reads ours as %+v, %v", rv, err)
	}
	if err := msgpack.Unmarshal(ours, &hv); err != nil || hv.Data != v.Data || !hv.Time.Equal(v.Time) || hv.Seq != v.Seq {
		t.Errorf("hand-written reads ours as %+v, %v", hv, err)
	}
}

func BenchmarkMsgpackV5Reflect(b *testing.B) {
	v := newV5Event()
	raw, _ := msgpack.Marshal(&v)
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			if err := enc.Encode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		rd := bytes.NewReader(raw)
		dec := msgpack.NewDecoder(rd)
		var got v5Event
		for b.Loop() {
			rd.Reset(raw)
			dec.ResetReader(rd)
			if err := dec.Decode(&got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Marshal", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		var got v5Event
		for b.Loop() {
			if err := msgpack.Unmarshal(raw, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMsgpackV5Hand(b *testing.B) {
	h := v5HandEvent{v5Event: newV5Event()}
	raw, _ := msgpack.Marshal(&h)
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			if err := h.EncodeMsgpack(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		rd := bytes.NewReader(raw)
		dec := msgpack.NewDecoder(rd)
		var got v5HandEvent
		for b.Loop() {
			rd.Reset(raw)
			dec.ResetReader(rd)
			if err := got.DecodeMsgpack(dec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendJSONString: the strings of an enriched event as JSON
// (ids, symbols, a source URL: plain ASCII, the common case).
func BenchmarkAppendJSONString(b *testing.B) {
	strs := []string{"com.sluice.quote.enriched.v1", "https://feeds.example.com/nasdaq/itch", "3hXq0tC2mYbL1", "AAPL", "XNAS", "Apple Inc.", "USD", "datacontenttype"}
	n := 0
	for _, s := range strs {
		n += len(s)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = buf[:0]
		for _, s := range strs {
			buf = schemas.AppendJSONString(buf, s)
		}
	}
}
