package enrich_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

func TestStoreZeroValue(t *testing.T) {
	var s enrich.Store
	if _, ok := s.Instrument("AAPL"); ok {
		t.Error("empty store has AAPL")
	}
	if _, ok := s.USDRate("USD"); ok {
		t.Error("empty store has a USD rate")
	}
	if i, f := s.Len(); i != 0 || f != 0 {
		t.Errorf("Len = %d, %d; want 0, 0", i, f)
	}
	s.PutFX(schemas.FXRate{Currency: "USD", USDRate: 1})
	if r, ok := s.USDRate("USD"); !ok || r != 1 {
		t.Errorf("USDRate(USD) = %v, %v after PutFX", r, ok)
	}
}

func TestStoreReplace(t *testing.T) {
	s := smallStore(t)
	if i, f := s.Len(); i != 7 || f != 4 {
		t.Fatalf("Len = %d, %d; want 7, 4", i, f)
	}
	in, ok := s.Instrument("BRK.B")
	if !ok || in.Name != "Berkshire Hathaway Inc. Class B" {
		t.Errorf("Instrument(BRK.B) = %+v, %v", in, ok)
	}
	if r, ok := s.USDRate("GBX"); !ok || r != 0.0127 {
		t.Errorf("USDRate(GBX) = %v, %v", r, ok)
	}
	s.Replace(&enrich.RefData{FX: []schemas.FXRate{{Currency: "EUR", USDRate: 1.1}}})
	if _, ok := s.Instrument("BRK.B"); ok {
		t.Error("Replace kept an instrument the new data does not list")
	}
	if i, f := s.Len(); i != 0 || f != 1 {
		t.Errorf("Len = %d, %d after Replace; want 0, 1", i, f)
	}
	s.Replace(nil)
	if i, f := s.Len(); i != 0 || f != 0 {
		t.Errorf("Len = %d, %d after Replace(nil); want 0, 0", i, f)
	}
}

func TestStoreReplaceCopies(t *testing.T) {
	rd := &enrich.RefData{Instruments: []schemas.Instrument{{Symbol: "A", Name: "before", Currency: "USD"}}}
	s := enrich.NewStore()
	s.Replace(rd)
	rd.Instruments[0].Name = "after"
	if in, _ := s.Instrument("A"); in.Name != "before" {
		t.Errorf("a change to the RefData reached the store: %q", in.Name)
	}
}

func TestStorePutDelete(t *testing.T) {
	s := smallStore(t)
	old, _ := s.Instrument("AAPL")

	s.PutInstrument(schemas.Instrument{Symbol: "AAPL", Name: "Apple", Currency: "USD"})
	s.PutInstrument(schemas.Instrument{Symbol: "NEW", Currency: "USD"})
	s.PutFX(schemas.FXRate{Currency: "JPY", USDRate: 0.007})
	s.PutFX(schemas.FXRate{Currency: "CHF", USDRate: 1.13})

	if in, _ := s.Instrument("AAPL"); in.Name != "Apple" {
		t.Errorf("AAPL name = %q after PutInstrument", in.Name)
	}
	if old.Name != "Apple Inc." {
		t.Errorf("an instrument read before a write changed to %q", old.Name)
	}
	if r, _ := s.USDRate("JPY"); r != 0.007 {
		t.Errorf("JPY = %v after PutFX", r)
	}
	if i, f := s.Len(); i != 8 || f != 5 {
		t.Errorf("Len = %d, %d; want 8, 5", i, f)
	}

	s.DeleteInstrument("NEW")
	s.DeleteInstrument("NOT-THERE")
	s.DeleteFX("CHF")
	s.DeleteFX("XXX")
	if _, ok := s.Instrument("NEW"); ok {
		t.Error("NEW still there after DeleteInstrument")
	}
	if _, ok := s.USDRate("CHF"); ok {
		t.Error("CHF still there after DeleteFX")
	}
	if i, f := s.Len(); i != 7 || f != 4 {
		t.Errorf("Len = %d, %d; want 7, 4", i, f)
	}
}

// TestStoreConcurrent runs readers against writers; the race detector checks
// that readers need no lock.
func TestStoreConcurrent(t *testing.T) {
	s := smallStore(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				in, ok := s.Instrument("AAPL")
				if !ok || in.Symbol != "AAPL" {
					t.Error("AAPL missing during writes")
					return
				}
				if _, ok := s.USDRate("USD"); !ok {
					t.Error("USD missing during writes")
					return
				}
			}
		})
	}
	for i := range 200 {
		s.PutInstrument(schemas.Instrument{Symbol: "AAPL", Name: strconv.Itoa(i), Currency: "USD"})
		s.PutFX(schemas.FXRate{Currency: "USD", USDRate: 1})
		s.PutInstrument(schemas.Instrument{Symbol: "X" + strconv.Itoa(i), Currency: "USD"})
	}
	close(stop)
	wg.Wait()
	if in, _ := s.Instrument("AAPL"); in.Name != "199" {
		t.Errorf("AAPL name = %q, want the last write", in.Name)
	}
}

func BenchmarkStoreInstrument(b *testing.B) {
	s := enrich.NewStore()
	s.Replace(enrich.Sample())
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Instrument("BRK.B"); !ok {
			b.Fatal("BRK.B missing")
		}
	}
}

func BenchmarkStoreUSDRate(b *testing.B) {
	s := enrich.NewStore()
	s.Replace(enrich.Sample())
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.USDRate("GBX"); !ok {
			b.Fatal("GBX missing")
		}
	}
}

func BenchmarkStoreInstrumentParallel(b *testing.B) {
	s := enrich.NewStore()
	s.Replace(enrich.Sample())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := s.Instrument("AAPL"); !ok {
				b.Error("AAPL missing")
				return
			}
		}
	})
}
