package schemas

import "fmt"

// Size bounds of the variable-size fields of an event, in bytes of UTF-8
// (JSON Schema's maxLength counts characters: for ASCII, the same). They keep every
// event, and the enriched event a worker makes of it, a few kilobytes at
// most, far below any NATS max_payload in use: the gateway refuses an event
// past one of them before publishing anything ([CheckSizes]), and workers
// reject one with [CodeInvalidField] ([Validate]), with the same details.
// The JSON Schemas of the types (jsonschema/) state the payload's bounds as
// maxLength and maxItems.
const (
	// MaxSymbolLen bounds symbol (and it must not be empty).
	MaxSymbolLen = 32
	// MaxVenueLen bounds venue at the gateway. A venue is a MIC (4
	// characters A-Z, 0-9), which the worker checks; past this bound it is
	// not worth publishing to find out.
	MaxVenueLen = 16
	// MaxTradeIDLen bounds a trade's trade_id.
	MaxTradeIDLen = 64
	// MaxConditions bounds the entries of a trade's conditions.
	MaxConditions = 16
	// MaxConditionLen bounds each entry of a trade's conditions.
	MaxConditionLen = 16
	// MaxIDLen bounds the CloudEvents id.
	MaxIDLen = 128
	// MaxSourceLen bounds the CloudEvents source.
	MaxSourceLen = 256
	// MaxTypeLen bounds the CloudEvents type.
	MaxTypeLen = 64
	// MaxSubjectLen bounds the CloudEvents subject (set to the symbol by
	// the gateway when the payload has a valid one).
	MaxSubjectLen = 128
	// MaxDataSchemaLen bounds the CloudEvents dataschema.
	MaxDataSchemaLen = 256
)

// CheckSizes reports the first field of ev longer than its bound (see
// [MaxSymbolLen] and the constants after it), as the [FieldError] that
// [Validate] gives for it, and ok false; a field marked invalid (of the
// wrong type) is not checked. It does not allocate unless it reports.
func CheckSizes(ev *Event) (fe FieldError, ok bool) {
	switch {
	case len(ev.ID) > MaxIDLen:
		return tooLong("id", len(ev.ID), MaxIDLen), false
	case len(ev.Source) > MaxSourceLen:
		return tooLong("source", len(ev.Source), MaxSourceLen), false
	case len(ev.Type) > MaxTypeLen:
		return tooLong("type", len(ev.Type), MaxTypeLen), false
	case len(ev.Subject) > MaxSubjectLen:
		return tooLong("subject", len(ev.Subject), MaxSubjectLen), false
	case len(ev.DataSchema) > MaxDataSchemaLen:
		return tooLong("dataschema", len(ev.DataSchema), MaxDataSchemaLen), false
	}
	switch ev.Kind {
	case KindQuote:
		q := &ev.Quote
		return checkPayloadSizes(q.Symbol, q.Venue, "", nil, q.Invalid)
	case KindTrade:
		t := &ev.Trade
		return checkPayloadSizes(t.Symbol, t.Venue, t.TradeID, t.Conditions, t.Invalid)
	}
	return FieldError{}, true
}

func checkPayloadSizes(symbol, venue, tradeID string, conditions []string, invalid uint16) (FieldError, bool) {
	switch {
	case invalid&FSymbol == 0 && len(symbol) > MaxSymbolLen:
		return symbolError(), false
	case invalid&FVenue == 0 && len(venue) > MaxVenueLen:
		return venueError(venue), false
	case invalid&FTradeID == 0 && len(tradeID) > MaxTradeIDLen:
		return tooLong("trade_id", len(tradeID), MaxTradeIDLen), false
	case invalid&FConditions != 0:
		return FieldError{}, true
	case len(conditions) > MaxConditions:
		return FieldError{Field: "conditions", Code: CodeInvalidField,
			Detail: fmt.Sprintf("conditions has %d entries, more than %d", len(conditions), MaxConditions)}, false
	}
	for i, c := range conditions {
		if len(c) > MaxConditionLen {
			return FieldError{Field: "conditions", Code: CodeInvalidField,
				Detail: fmt.Sprintf("conditions[%d] is %d bytes long, more than %d", i, len(c), MaxConditionLen)}, false
		}
	}
	return FieldError{}, true
}

func tooLong(name string, n, bound int) FieldError {
	return FieldError{Field: name, Code: CodeInvalidField,
		Detail: fmt.Sprintf("%s is %d bytes long, more than %d", name, n, bound)}
}

func symbolError() FieldError {
	return FieldError{Field: "symbol", Code: CodeInvalidField, Detail: "symbol must be 1 to 32 characters"}
}

// venueError is the failure of a venue that is not a MIC; it quotes the
// venue only when it is short.
func venueError(venue string) FieldError {
	if len(venue) > MaxVenueLen {
		return FieldError{Field: "venue", Code: CodeInvalidField,
			Detail: fmt.Sprintf("venue is %d bytes long, not a MIC (4 characters A-Z, 0-9)", len(venue))}
	}
	return FieldError{Field: "venue", Code: CodeInvalidField,
		Detail: fmt.Sprintf("venue %q is not a MIC (4 characters A-Z, 0-9)", venue)}
}

// appendSizeErrors appends a failure for every CloudEvents attribute and
// trade field (trade_id, conditions) past its bound; symbol and venue are
// checked with the payload's other shape rules. An event within its bounds
// costs a few comparisons.
func appendSizeErrors(ev *Event, errs []FieldError) []FieldError {
	if len(ev.ID) <= MaxIDLen && len(ev.Source) <= MaxSourceLen && len(ev.Type) <= MaxTypeLen &&
		len(ev.Subject) <= MaxSubjectLen && len(ev.DataSchema) <= MaxDataSchemaLen &&
		(ev.Kind != KindTrade || tradeSizesWithin(&ev.Trade)) {
		return errs
	}
	return appendSizeErrorsSlow(ev, errs)
}

func tradeSizesWithin(t *Trade) bool {
	if len(t.TradeID) > MaxTradeIDLen || len(t.Conditions) > MaxConditions {
		return false
	}
	for _, c := range t.Conditions {
		if len(c) > MaxConditionLen {
			return false
		}
	}
	return true
}

func appendSizeErrorsSlow(ev *Event, errs []FieldError) []FieldError {
	attrs := [...]struct {
		name  string
		v     string
		bound int
	}{
		{"id", ev.ID, MaxIDLen},
		{"source", ev.Source, MaxSourceLen},
		{"type", ev.Type, MaxTypeLen},
		{"subject", ev.Subject, MaxSubjectLen},
		{"dataschema", ev.DataSchema, MaxDataSchemaLen},
	}
	for _, a := range attrs {
		if len(a.v) > a.bound {
			errs = append(errs, tooLong(a.name, len(a.v), a.bound))
		}
	}
	if ev.Kind == KindTrade {
		t := &ev.Trade
		if t.Invalid&FTradeID == 0 && len(t.TradeID) > MaxTradeIDLen {
			errs = append(errs, tooLong("trade_id", len(t.TradeID), MaxTradeIDLen))
		}
		if t.Invalid&FConditions == 0 {
			if fe, ok := checkPayloadSizes("", "", "", t.Conditions, 0); !ok {
				errs = append(errs, fe)
			}
		}
	}
	return errs
}
