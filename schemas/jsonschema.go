package schemas

import (
	"bytes"
	_ "embed"
)

// The JSON Schemas (draft 2020-12) of the HTTP API's payloads, one per kind
// and version, as GET /v1/types serves them.
var (
	//go:embed jsonschema/quote.v1.json
	quoteV1Schema []byte
	//go:embed jsonschema/trade.v1.json
	tradeV1Schema []byte
)

// JSONSchema returns the JSON Schema of the current (v1) payload of k, or nil
// for an unknown kind. The schema describes field types and the rules that a
// schema can state; rules across fields (a crossed quote) and relative to the
// worker's clock (stale, future_timestamp) are [Validate]'s. Each call
// returns a new copy that the caller may keep or modify.
func JSONSchema(k Kind) []byte {
	switch k {
	case KindQuote:
		return bytes.Clone(quoteV1Schema)
	case KindTrade:
		return bytes.Clone(tradeV1Schema)
	}
	return nil
}
