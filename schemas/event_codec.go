package schemas

import "fmt"

// AppendMsgpack appends e as a MessagePack CloudEvents map: the attributes
// by their spec names, the sluice extensions, and data as a map.
func (e *Event) AppendMsgpack(b []byte) []byte {
	n := 8 // specversion id source type subject time datacontenttype data
	if e.DataSchema != "" {
		n++
	}
	if e.ReceivedAt != 0 {
		n++
	}
	if e.Corr != 0 {
		n++
	}
	if e.Corr != 0 || e.Seq != 0 {
		n++
	}
	if e.TraceParent != "" {
		n++
		if e.TraceState != "" {
			n++
		}
	}
	b = AppendMapHeader(b, n)
	b = appendAttrs(b, e.ID, e.Source, e.Type, e.Subject, e.Time)
	if e.DataSchema != "" {
		b = append(b, "\xaadataschema"...)
		b = AppendString(b, e.DataSchema)
	}
	if e.ReceivedAt != 0 {
		b = append(b, "\xaasluicerecv"...)
		b = AppendInt(b, e.ReceivedAt)
	}
	if e.Corr != 0 {
		b = append(b, "\xaasluicecorr"...)
		b = AppendUint(b, e.Corr)
	}
	if e.Corr != 0 || e.Seq != 0 {
		b = append(b, "\xa9sluiceseq"...)
		b = AppendUint(b, uint64(e.Seq))
	}
	b = appendTrace(b, e.TraceParent, e.TraceState)
	b = append(b, "\xa4data"...)
	switch e.Kind {
	case KindQuote:
		return e.Quote.AppendMsgpack(b)
	case KindTrade:
		return e.Trade.AppendMsgpack(b)
	}
	return AppendMapHeader(b, 0)
}

// appendTrace appends the distributed-tracing extension attributes: none
// without a traceparent (a tracestate alone means nothing).
func appendTrace(b []byte, parent, state string) []byte {
	if parent == "" {
		return b
	}
	b = append(b, "\xabtraceparent"...)
	b = AppendString(b, parent)
	if state != "" {
		b = append(b, "\xaatracestate"...)
		b = AppendString(b, state)
	}
	return b
}

func appendAttrs(b []byte, id, source, typ, subject string, t int64) []byte {
	b = append(b, "\xabspecversion\xa31.0\xa2id"...)
	b = AppendString(b, id)
	b = append(b, "\xa6source"...)
	b = AppendString(b, source)
	b = append(b, "\xa4type"...)
	b = AppendString(b, typ)
	b = append(b, "\xa7subject"...)
	b = AppendString(b, subject)
	b = append(b, "\xa4time"...)
	b = AppendTimestamp(b, t)
	return append(b, "\xafdatacontenttype\xb3application/msgpack"...)
}

// DecodeMsgpack reads one event from r into e, which it resets first.
// Strings alias r's input (see [Reader]). Unknown attributes are skipped;
// when a key repeats, the last value wins. An event whose type is
// marketdata.<kind>.v<N> with an unknown N decodes with Known false and its
// data left unparsed: workers reject it with [CodeUnknownVersion].
//
// A payload field of the wrong type (or nil) is not an error: it is marked in
// Present and Invalid. An error means the event is not a map of CloudEvents
// attributes, or is not MessagePack at all. When the event is still
// well-formed MessagePack (say, an attribute of the wrong type), r is left
// after it with no error, so that a batch reader can reject this one event
// (its bytes are those between r's offsets before and after the call) and go
// on with the next; otherwise r's error is sticky and the rest of the frame
// is lost.
func (e *Event) DecodeMsgpack(r *Reader) error {
	*e = Event{}
	start := r.off
	if err := e.decode(r); err != nil {
		r.resync(start)
		return err
	}
	return nil
}

func (e *Event) decode(r *Reader) error {
	var data []byte
	parsed := KindUnknown // the kind data was decoded as, in place
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch k := r.StringBytes(); string(k) {
		case "id":
			e.ID = r.String()
		case "source":
			e.Source = r.String()
		case "type":
			e.Type = r.String()
		case "subject":
			e.Subject = r.String()
		case "time":
			e.Time = r.Timestamp()
		case "dataschema":
			e.DataSchema = r.String()
		case "sluicerecv":
			e.ReceivedAt = r.Int64()
		case "sluicecorr":
			e.Corr = r.Uint64()
		case "sluiceseq":
			e.Seq = r.uint32()
		case "traceparent":
			e.TraceParent = r.String()
		case "tracestate":
			e.TraceState = r.String()
		case "data":
			start := r.off
			parsed = e.decodeData(r, dataKind(e.Type))
			if r.err != nil && parsed != KindUnknown {
				return fmt.Errorf("decoding %s data: %w", e.Type, r.err)
			}
			data = r.b[start:r.off]
		default:
			r.Skip()
		}
	}
	if r.err != nil {
		return fmt.Errorf("decoding event: %w", r.err)
	}
	e.Kind, e.Known, _ = ParseType(e.Type)
	if want := dataKind(e.Type); want != parsed && data != nil {
		// data came before type (or type changed after it): decode it
		// again, now that the type is known.
		dr := NewReader(data)
		e.decodeData(&dr, want)
		if dr.err != nil {
			return fmt.Errorf("decoding %s data: %w", e.Type, dr.err)
		}
	}
	return nil
}

// dataKind returns the kind whose payload the data of an event of type t
// holds, or KindUnknown when data is not to be decoded (an unknown type or
// version).
func dataKind(t string) Kind {
	if k, known, _ := ParseType(t); known {
		return k
	}
	return KindUnknown
}

// decodeData reads data into the payload of kind k (resetting both payloads
// first), or skips it for KindUnknown, and returns k.
func (e *Event) decodeData(r *Reader, k Kind) Kind {
	e.Quote, e.Trade = Quote{}, Trade{}
	switch k {
	case KindQuote:
		e.Quote.decodeMsgpack(r)
	case KindTrade:
		e.Trade.decodeMsgpack(r)
	default:
		r.Skip()
	}
	return k
}

// Payload field bits of each kind: a Present bit outside its kind's set is
// ignored by the encoders.
const (
	quoteBits = FSymbol | FBid | FAsk | FBidSize | FAskSize | FVenue | FTS
	tradeBits = FSymbol | FPrice | FSize | FVenue | FTS | FTradeID | FConditions
)

// AppendMsgpack appends q's fields as a MessagePack map. Fields not present
// are left out; invalid ones are written as nil.
func (q *Quote) AppendMsgpack(b []byte) []byte {
	b = AppendMapHeader(b, popcount(q.Present&quoteBits))
	return q.appendFields(b)
}

func (q *Quote) appendFields(b []byte) []byte {
	if q.Present&FSymbol != 0 {
		b = append(b, "\xa6symbol"...)
		b = appendStringOrNil(b, q.Symbol, q.Invalid&FSymbol != 0)
	}
	if q.Present&FBid != 0 {
		b = append(b, "\xa3bid"...)
		b = appendFloatOrNil(b, q.Bid, q.Invalid&FBid != 0)
	}
	if q.Present&FAsk != 0 {
		b = append(b, "\xa3ask"...)
		b = appendFloatOrNil(b, q.Ask, q.Invalid&FAsk != 0)
	}
	if q.Present&FBidSize != 0 {
		b = append(b, "\xa8bid_size"...)
		b = appendIntOrNil(b, q.BidSize, q.Invalid&FBidSize != 0)
	}
	if q.Present&FAskSize != 0 {
		b = append(b, "\xa8ask_size"...)
		b = appendIntOrNil(b, q.AskSize, q.Invalid&FAskSize != 0)
	}
	if q.Present&FVenue != 0 {
		b = append(b, "\xa5venue"...)
		b = appendStringOrNil(b, q.Venue, q.Invalid&FVenue != 0)
	}
	if q.Present&FTS != 0 {
		b = append(b, "\xa2ts"...)
		b = appendIntOrNil(b, q.TS, q.Invalid&FTS != 0)
	}
	return b
}

func (q *Quote) decodeMsgpack(r *Reader) {
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		key := r.StringBytes()
		start := r.off
		bit := q.decodeField(r, key)
		q.Present, q.Invalid = markField(r, start, bit, q.Present, q.Invalid)
	}
}

// decodeField reads the value of key when it has the expected type (and sets
// the field to its zero value otherwise) and returns the field's bit; 0 for
// an unknown key (value left unread).
func (q *Quote) decodeField(r *Reader, key []byte) uint16 {
	switch string(key) {
	case "symbol":
		q.Symbol = readString(r)
		return FSymbol
	case "bid":
		q.Bid = readFloat(r)
		return FBid
	case "ask":
		q.Ask = readFloat(r)
		return FAsk
	case "bid_size":
		q.BidSize = readInt(r)
		return FBidSize
	case "ask_size":
		q.AskSize = readInt(r)
		return FAskSize
	case "venue":
		q.Venue = readString(r)
		return FVenue
	case "ts":
		q.TS = readTime(r)
		return FTS
	}
	return 0
}

// markField records the field of bit as present and, when the typed read
// before it consumed nothing (the value had another type, or nil), as
// invalid, skipping the value; a value that was read clears an invalid mark
// left by an earlier value of the same key. A zero bit is an unknown key:
// skipped.
func markField(r *Reader, start int, bit, present, invalid uint16) (uint16, uint16) {
	if bit == 0 {
		r.Skip()
		return present, invalid
	}
	present |= bit
	switch {
	case r.err != nil:
	case r.off == start:
		invalid |= bit
		r.Skip()
	default:
		invalid &^= bit
	}
	return present, invalid
}

// The typed reads of payload fields: each reads a value of its type, or
// nothing (and returns zero) when the next value has another type.

func readString(r *Reader) string {
	if r.IsString() {
		return r.String()
	}
	return ""
}

func readFloat(r *Reader) float64 {
	if r.IsNumber() {
		return r.Float64()
	}
	return 0
}

// readInt reads an integer, or a float that holds one (1.0 is an integer,
// as in JSON Schema), saturating past int64 so that validation calls it
// out_of_range (or negative_size) rather than the wrong type.
func readInt(r *Reader) int64 {
	switch c := r.Peek(); {
	case r.IsInt():
		return r.int64Sat()
	case r.IsNumber() && (c == 0xca || c == 0xcb):
		i, _ := r.integral()
		return i
	}
	return 0
}

// readTime reads a timestamp or integer Unix nanoseconds (or a float that
// holds an integer), saturating outside int64 (years 1677 to 2262): such a
// time is stale or future_timestamp, not of the wrong type.
func readTime(r *Reader) int64 {
	switch c := r.Peek(); {
	case r.IsInt() || c == 0xd6 || c == 0xd7 || c == 0xc7:
		return r.timestamp(true)
	case r.IsNumber() && (c == 0xca || c == 0xcb):
		i, _ := r.integral()
		return i
	}
	return 0
}

// AppendMsgpack appends t's fields as a MessagePack map. Fields not present
// are left out; invalid ones are written as nil.
func (t *Trade) AppendMsgpack(b []byte) []byte {
	b = AppendMapHeader(b, popcount(t.Present&tradeBits))
	return t.appendFields(b)
}

func (t *Trade) appendFields(b []byte) []byte {
	if t.Present&FSymbol != 0 {
		b = append(b, "\xa6symbol"...)
		b = appendStringOrNil(b, t.Symbol, t.Invalid&FSymbol != 0)
	}
	if t.Present&FPrice != 0 {
		b = append(b, "\xa5price"...)
		b = appendFloatOrNil(b, t.Price, t.Invalid&FPrice != 0)
	}
	if t.Present&FSize != 0 {
		b = append(b, "\xa4size"...)
		b = appendIntOrNil(b, t.Size, t.Invalid&FSize != 0)
	}
	if t.Present&FVenue != 0 {
		b = append(b, "\xa5venue"...)
		b = appendStringOrNil(b, t.Venue, t.Invalid&FVenue != 0)
	}
	if t.Present&FTS != 0 {
		b = append(b, "\xa2ts"...)
		b = appendIntOrNil(b, t.TS, t.Invalid&FTS != 0)
	}
	if t.Present&FTradeID != 0 {
		b = append(b, "\xa8trade_id"...)
		b = appendStringOrNil(b, t.TradeID, t.Invalid&FTradeID != 0)
	}
	if t.Present&FConditions != 0 {
		b = append(b, "\xaaconditions"...)
		if t.Invalid&FConditions != 0 {
			b = AppendNil(b)
		} else {
			b = AppendArrayHeader(b, len(t.Conditions))
			for _, c := range t.Conditions {
				b = AppendString(b, c)
			}
		}
	}
	return b
}

func (t *Trade) decodeMsgpack(r *Reader) {
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		key := r.StringBytes()
		start := r.off
		bit := t.decodeField(r, key)
		t.Present, t.Invalid = markField(r, start, bit, t.Present, t.Invalid)
	}
}

// decodeField reads the value of key when it has the expected type (and sets
// the field to its zero value otherwise) and returns the field's bit; 0 for
// an unknown key (value left unread).
func (t *Trade) decodeField(r *Reader, key []byte) uint16 {
	switch string(key) {
	case "symbol":
		t.Symbol = readString(r)
		return FSymbol
	case "price":
		t.Price = readFloat(r)
		return FPrice
	case "size":
		t.Size = readInt(r)
		return FSize
	case "venue":
		t.Venue = readString(r)
		return FVenue
	case "ts":
		t.TS = readTime(r)
		return FTS
	case "trade_id":
		t.TradeID = readString(r)
		return FTradeID
	case "conditions":
		t.Conditions = readStrings(r, t.Conditions[:0])
		return FConditions
	}
	return 0
}

// readStrings reads an array of strings; on another shape it reads nothing.
func readStrings(r *Reader, dst []string) []string {
	c := r.Peek()
	if c&0xf0 != 0x90 && c != 0xdc && c != 0xdd {
		return dst
	}
	save := r.off
	n := r.ArrayHeader()
	if n > 0 && dst == nil {
		dst = make([]string, 0, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		if !r.IsString() {
			r.off = save
			return dst[:0]
		}
		dst = append(dst, r.String())
	}
	return dst
}

func popcount(x uint16) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func appendStringOrNil(b []byte, s string, invalid bool) []byte {
	if invalid {
		return AppendNil(b)
	}
	return AppendString(b, s)
}

func appendFloatOrNil(b []byte, f float64, invalid bool) []byte {
	if invalid {
		return AppendNil(b)
	}
	return AppendFloat64(b, f)
}

func appendIntOrNil(b []byte, i int64, invalid bool) []byte {
	if invalid {
		return AppendNil(b)
	}
	return AppendInt(b, i)
}
