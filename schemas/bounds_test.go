package schemas_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

// TestCheckSizes puts each variable-size field at its bound (accepted) and
// one past it (refused): CheckSizes reports the field, and Validate reports
// the same failure, with the same detail.
func TestCheckSizes(t *testing.T) {
	quote := func(f func(ev *schemas.Event)) schemas.Event { ev := sampleQuote(); f(&ev); return ev }
	trade := func(f func(ev *schemas.Event)) schemas.Event { ev := sampleTrade(); f(&ev); return ev }
	s := func(n int) string { return strings.Repeat("A", n) }
	conds := func(n, size int) []string {
		c := make([]string, n)
		for i := range c {
			c[i] = s(size)
		}
		return c
	}
	tests := []struct {
		name  string
		ev    schemas.Event
		field string // "" means within bounds
	}{
		{"quote", sampleQuote(), ""},
		{"trade", sampleTrade(), ""},
		{"symbol at bound", quote(func(ev *schemas.Event) { ev.Quote.Symbol = s(schemas.MaxSymbolLen) }), ""},
		{"symbol past", quote(func(ev *schemas.Event) { ev.Quote.Symbol = s(schemas.MaxSymbolLen + 1) }), "symbol"},
		{"trade symbol past", trade(func(ev *schemas.Event) { ev.Trade.Symbol = s(1 << 20) }), "symbol"},
		{"venue past", quote(func(ev *schemas.Event) { ev.Quote.Venue = s(1 << 20) }), "venue"},
		{"venue at bound", quote(func(ev *schemas.Event) { ev.Quote.Venue = s(schemas.MaxVenueLen) }), ""},
		{"trade venue past", trade(func(ev *schemas.Event) { ev.Trade.Venue = s(schemas.MaxVenueLen + 1) }), "venue"},
		{"trade_id at bound", trade(func(ev *schemas.Event) { ev.Trade.TradeID = s(schemas.MaxTradeIDLen) }), ""},
		{"trade_id past", trade(func(ev *schemas.Event) { ev.Trade.TradeID = s(schemas.MaxTradeIDLen + 1) }), "trade_id"},
		{"conditions at bound", trade(func(ev *schemas.Event) {
			ev.Trade.Conditions = conds(schemas.MaxConditions, schemas.MaxConditionLen)
		}), ""},
		{"conditions count past", trade(func(ev *schemas.Event) { ev.Trade.Conditions = conds(schemas.MaxConditions+1, 1) }), "conditions"},
		{"condition length past", trade(func(ev *schemas.Event) { ev.Trade.Conditions = conds(2, 1<<20) }), "conditions"},
		{"id past", quote(func(ev *schemas.Event) { ev.ID = s(schemas.MaxIDLen + 1) }), "id"},
		{"source past", trade(func(ev *schemas.Event) { ev.Source = s(schemas.MaxSourceLen + 1) }), "source"},
		{"subject past", quote(func(ev *schemas.Event) { ev.Subject = s(schemas.MaxSubjectLen + 1) }), "subject"},
		{"dataschema past", quote(func(ev *schemas.Event) { ev.DataSchema = s(schemas.MaxDataSchemaLen + 1) }), "dataschema"},
		{"type past, unknown", quote(func(ev *schemas.Event) {
			ev.Type, ev.Known = "marketdata.quote.v"+strings.Repeat("9", schemas.MaxTypeLen), false
		}), "type"},
		{"invalid conditions not checked", trade(func(ev *schemas.Event) {
			ev.Trade.Conditions = conds(100, 1)
			ev.Trade.Invalid |= schemas.FConditions
		}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe, ok := schemas.CheckSizes(&tt.ev)
			if ok != (tt.field == "") || fe.Field != tt.field {
				t.Fatalf("CheckSizes = %+v, %v; want field %q", fe, ok, tt.field)
			}
			errs := schemas.Validate(&tt.ev, validateNow, schemas.Limits{}, nil)
			if tt.field == "" {
				for _, e := range errs {
					if strings.Contains(e.Detail, "long") || e.Field == "symbol" {
						t.Errorf("Validate: %+v", e)
					}
				}
				return
			}
			if fe.Code != schemas.CodeInvalidField || len(fe.Detail) > 200 {
				t.Errorf("CheckSizes failure %+v: want invalid_field and a short detail", fe)
			}
			found := false
			for _, e := range errs {
				found = found || e == fe
			}
			if !found {
				t.Errorf("Validate gave %+v, not CheckSizes' %+v", errs, fe)
			}
		})
	}
}

func TestCheckSizesAllocs(t *testing.T) {
	ev := sampleTrade()
	if n := testing.AllocsPerRun(100, func() { schemas.CheckSizes(&ev) }); n != 0 {
		t.Errorf("CheckSizes of a valid trade: %v allocs", n)
	}
}

// BenchmarkCheckSizes is the gateway's per-event cost of the size bounds.
func BenchmarkCheckSizes(b *testing.B) {
	ev := sampleTrade()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := schemas.CheckSizes(&ev); !ok {
			b.Fatal("sample trade out of bounds")
		}
	}
}
