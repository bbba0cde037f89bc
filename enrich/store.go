package enrich

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/sluice-dev/sluice/schemas"
)

// Store holds the reference data that enrichers read: instruments by symbol
// and USD rates by currency.
//
// Reads take no lock and do not allocate: they load an immutable snapshot
// through an atomic pointer. Writers copy the snapshot, change the copy and
// publish it, one writer at a time; a write therefore costs a copy of the
// maps, which suits data that changes a few times a day. A reader sees either
// the whole of a write or none of it, and a [Store.Replace] is one write.
//
// The zero Store is empty and ready to use. A Store must not be copied after
// first use.
type Store struct {
	mu   sync.Mutex // serialises writers; readers never take it
	snap atomic.Pointer[snapshot]
}

// snapshot is one immutable version of a Store's content. Nothing changes a
// snapshot, its maps or the instruments they point to once it is published.
type snapshot struct {
	instruments map[string]*schemas.Instrument
	fx          map[string]float64
	// marks has a priceMark per symbol of instruments, carried from
	// snapshot to snapshot by symbol: the only part of a snapshot that
	// changes after publication, through atomics.
	marks map[string]*priceMark
}

// priceMark is the last enriched price of a symbol, for the price band
// ([Enricher.PriceBand]).
type priceMark struct {
	bits   atomic.Uint64 // math.Float64bits of the price; 0 before the first
	misses atomic.Uint32 // events refused as out of band since that price
}

var emptySnapshot = &snapshot{}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{}
}

// load returns the current snapshot, never nil.
func (s *Store) load() *snapshot {
	if p := s.snap.Load(); p != nil {
		return p
	}
	return emptySnapshot
}

// Instrument returns the instrument listed as symbol. The result points into
// a snapshot shared with every other reader: the caller must not modify it.
// It stays valid, with the values it had, after later writes to the Store.
func (s *Store) Instrument(symbol string) (*schemas.Instrument, bool) {
	in, ok := s.load().instruments[symbol]
	return in, ok
}

// mark returns the price mark of symbol, nil when the Store does not list
// it.
func (s *Store) mark(symbol string) *priceMark {
	return s.load().marks[symbol]
}

// USDRate returns the value of one unit of currency in US dollars, and false
// when the Store has no rate for it.
func (s *Store) USDRate(currency string) (float64, bool) {
	r, ok := s.load().fx[currency]
	return r, ok
}

// Len returns how many instruments and FX rates the Store holds.
func (s *Store) Len() (instruments, fx int) {
	p := s.load()
	return len(p.instruments), len(p.fx)
}

// Replace swaps the Store's whole content for rd's in one write. A nil rd
// empties the Store. Replace does not validate rd (see [RefData.Validate]);
// where rd lists a symbol or currency twice, the last entry wins. Later
// changes to rd do not reach the Store.
func (s *Store) Replace(rd *RefData) {
	next := &snapshot{}
	if rd != nil {
		next.instruments = make(map[string]*schemas.Instrument, len(rd.Instruments))
		for _, in := range rd.Instruments {
			next.instruments[in.Symbol] = &in
		}
		next.fx = make(map[string]float64, len(rd.FX))
		for _, fx := range rd.FX {
			next.fx[fx.Currency] = fx.USDRate
		}
	}
	s.swap(next)
}

// swap publishes next as the Store's content.
func (s *Store) swap(next *snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publish(next)
}

// publish gives next a price mark per instrument, the current one for a
// symbol already listed, and stores it. The caller holds s.mu.
func (s *Store) publish(next *snapshot) {
	cur := s.load()
	next.marks = make(map[string]*priceMark, len(next.instruments))
	for symbol := range next.instruments {
		m := cur.marks[symbol]
		if m == nil {
			m = new(priceMark)
		}
		next.marks[symbol] = m
	}
	s.snap.Store(next)
}

// PutInstrument adds in, or replaces the instrument with the same symbol.
func (s *Store) PutInstrument(in schemas.Instrument) {
	s.update(func(instruments map[string]*schemas.Instrument, _ map[string]float64) {
		instruments[in.Symbol] = &in
	})
}

// DeleteInstrument removes the instrument listed as symbol, if any.
func (s *Store) DeleteInstrument(symbol string) {
	s.update(func(instruments map[string]*schemas.Instrument, _ map[string]float64) {
		delete(instruments, symbol)
	})
}

// PutFX adds fx, or replaces the rate of the same currency.
func (s *Store) PutFX(fx schemas.FXRate) {
	s.update(func(_ map[string]*schemas.Instrument, rates map[string]float64) {
		rates[fx.Currency] = fx.USDRate
	})
}

// DeleteFX removes the rate of currency, if any.
func (s *Store) DeleteFX(currency string) {
	s.update(func(_ map[string]*schemas.Instrument, rates map[string]float64) {
		delete(rates, currency)
	})
}

// update applies f to copies of the current maps and publishes them as one
// write. f may change the maps but never an *Instrument already in them: it
// stores a pointer to a new one instead.
func (s *Store) update(f func(instruments map[string]*schemas.Instrument, fx map[string]float64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.load()
	next := &snapshot{
		instruments: maps.Clone(cur.instruments),
		fx:          maps.Clone(cur.fx),
	}
	if next.instruments == nil {
		next.instruments = make(map[string]*schemas.Instrument)
	}
	if next.fx == nil {
		next.fx = make(map[string]float64)
	}
	f(next.instruments, next.fx)
	s.publish(next)
}
