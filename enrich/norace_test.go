//go:build !race

package enrich_test

import (
	"testing"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

// TestNoAllocs holds the lookups and the success path of Enrich to zero
// allocations. The race detector changes allocation counts, hence the build
// tag.
func TestNoAllocs(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t)}
	q, tr := quoteEvent("BRK.B", 410, 411), tradeEvent("VOD.L", 72.5, 1000)
	var out schemas.Enriched
	errs := make([]schemas.FieldError, 0, 4)
	checks := map[string]func(){
		"Instrument": func() { e.Store.Instrument("BRK.B") },
		"USDRate":    func() { e.Store.USDRate("GBX") },
		"Len":        func() { e.Store.Len() },
		"EnrichQuote": func() {
			if errs = e.Enrich(q, now, &out, errs[:0]); len(errs) != 0 {
				t.Fatal(errs)
			}
		},
		"EnrichTrade": func() {
			if errs = e.Enrich(tr, now, &out, errs[:0]); len(errs) != 0 {
				t.Fatal(errs)
			}
		},
	}
	for name, f := range checks {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", name, n)
		}
	}
}
