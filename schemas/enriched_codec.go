package schemas

import "fmt"

// AppendMsgpack appends e as a MessagePack CloudEvents map, as workers
// publish it on <prefix>.enriched.<kind>.<symbol>.
func (e *Enriched) AppendMsgpack(b []byte) []byte {
	n := 8
	if e.TraceParent != "" {
		n++
		if e.TraceState != "" {
			n++
		}
	}
	b = AppendMapHeader(b, n)
	b = appendAttrs(b, e.ID, e.Source, e.Type, e.Subject, e.Time)
	b = appendTrace(b, e.TraceParent, e.TraceState)
	b = append(b, "\xa4data"...)
	switch e.Kind {
	case KindQuote:
		q := &e.Quote
		b = AppendMapHeader(b, popcount(q.Present&^q.Invalid&quoteBits)+6)
		valid := q.Quote
		valid.Present &^= q.Invalid
		valid.Invalid = 0
		b = valid.appendFields(b)
		b = append(b, "\xa3mid"...)
		b = AppendFloat64(b, q.Mid)
		b = append(b, "\xa6spread"...)
		b = AppendFloat64(b, q.Spread)
		b = append(b, "\xaaspread_bps"...)
		b = AppendFloat64(b, q.SpreadBps)
		b = appendInstrument(b, &q.Instrument)
		return appendStamps(b, q.ReceivedAt, q.EnrichedAt)
	case KindTrade:
		t := &e.Trade
		b = AppendMapHeader(b, popcount(t.Present&^t.Invalid&tradeBits)+5)
		valid := t.Trade
		valid.Present &^= t.Invalid
		valid.Invalid = 0
		b = valid.appendFields(b)
		b = append(b, "\xa8notional"...)
		b = AppendFloat64(b, t.Notional)
		b = append(b, "\xacnotional_usd"...)
		b = AppendFloat64(b, t.NotionalUSD)
		b = appendInstrument(b, &t.Instrument)
		return appendStamps(b, t.ReceivedAt, t.EnrichedAt)
	}
	return AppendMapHeader(b, 0)
}

func appendStamps(b []byte, received, enriched int64) []byte {
	b = append(b, "\xabreceived_at"...)
	b = AppendInt(b, received)
	b = append(b, "\xabenriched_at"...)
	return AppendInt(b, enriched)
}

func appendInstrument(b []byte, in *Instrument) []byte {
	b = append(b, "\xaainstrument\x88\xa6symbol"...)
	b = AppendString(b, in.Symbol)
	b = append(b, "\xa4name"...)
	b = AppendString(b, in.Name)
	b = append(b, "\xa3mic"...)
	b = AppendString(b, in.MIC)
	b = append(b, "\xa8currency"...)
	b = AppendString(b, in.Currency)
	b = append(b, "\xa4isin"...)
	b = AppendString(b, in.ISIN)
	b = append(b, "\xabasset_class"...)
	b = AppendString(b, in.AssetClass)
	b = append(b, "\xa9tick_size"...)
	b = AppendFloat64(b, in.TickSize)
	b = append(b, "\xa8lot_size"...)
	return AppendInt(b, in.LotSize)
}

// DecodeMsgpack reads one enriched event from r into e, which it resets
// first, filling the payload of its kind only (Quote or Trade). Strings alias
// r's input. A type other than the two enriched types is an error wrapping
// [ErrFrame].
func (e *Enriched) DecodeMsgpack(r *Reader) error {
	*e = Enriched{}
	var data []byte
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch string(r.StringBytes()) {
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
		case "traceparent":
			e.TraceParent = r.String()
		case "tracestate":
			e.TraceState = r.String()
		case "data":
			data = r.Raw()
		default:
			r.Skip()
		}
	}
	if r.err != nil {
		return fmt.Errorf("decoding enriched event: %w", r.err)
	}
	switch e.Type {
	case TypeQuoteEnrichedV1:
		e.Kind = KindQuote
	case TypeTradeEnrichedV1:
		e.Kind = KindTrade
	default:
		return fmt.Errorf("decoding enriched event: %w: type %q", ErrFrame, e.Type)
	}
	dr := NewReader(data)
	e.decodeData(&dr)
	if dr.err != nil {
		return fmt.Errorf("decoding %s data: %w", e.Type, dr.err)
	}
	return nil
}

func (e *Enriched) decodeData(r *Reader) {
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		key := r.StringBytes()
		if e.Kind == KindQuote {
			e.Quote.decodeKey(r, key)
		} else {
			e.Trade.decodeKey(r, key)
		}
	}
}

// decodeKey reads the value of one data key of an enriched quote; a key of
// neither the quote nor its enrichment is skipped.
func (q *EnrichedQuote) decodeKey(r *Reader, key []byte) {
	switch string(key) {
	case "mid":
		q.Mid = r.Float64()
	case "spread":
		q.Spread = r.Float64()
	case "spread_bps":
		q.SpreadBps = r.Float64()
	case "instrument":
		decodeInstrument(r, &q.Instrument)
	case "received_at":
		q.ReceivedAt = r.Int64()
	case "enriched_at":
		q.EnrichedAt = r.Int64()
	default:
		start := r.off
		bit := q.Quote.decodeField(r, key)
		q.Present, q.Invalid = markField(r, start, bit, q.Present, q.Invalid)
	}
}

// decodeKey reads the value of one data key of an enriched trade; a key of
// neither the trade nor its enrichment is skipped.
func (t *EnrichedTrade) decodeKey(r *Reader, key []byte) {
	switch string(key) {
	case "notional":
		t.Notional = r.Float64()
	case "notional_usd":
		t.NotionalUSD = r.Float64()
	case "instrument":
		decodeInstrument(r, &t.Instrument)
	case "received_at":
		t.ReceivedAt = r.Int64()
	case "enriched_at":
		t.EnrichedAt = r.Int64()
	default:
		start := r.off
		bit := t.Trade.decodeField(r, key)
		t.Present, t.Invalid = markField(r, start, bit, t.Present, t.Invalid)
	}
}

func decodeInstrument(r *Reader, in *Instrument) {
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch string(r.StringBytes()) {
		case "symbol":
			in.Symbol = r.String()
		case "name":
			in.Name = r.String()
		case "mic":
			in.MIC = r.String()
		case "currency":
			in.Currency = r.String()
		case "isin":
			in.ISIN = r.String()
		case "asset_class":
			in.AssetClass = r.String()
		case "tick_size":
			in.TickSize = r.Float64()
		case "lot_size":
			in.LotSize = r.Int64()
		default:
			r.Skip()
		}
	}
}
