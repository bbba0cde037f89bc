package bus

import (
	"fmt"
	"sync/atomic"
)

// Budget bounds retries to a fixed fraction of recent successful traffic,
// so that a sick stream is not hit by a retry storm: every success deposits
// Ratio of a token, every retry withdraws a whole one, and the balance is
// capped at Burst tokens, which forgets credit from long ago. With ratio
// 0.1, at most one retry is granted per ten successes (plus the Burst held
// in reserve). A Budget is safe for concurrent use and takes no lock.
type Budget struct {
	perSuccess int64 // milli-tokens per success
	max        int64 // milli-tokens
	tokens     atomic.Int64
	granted    atomic.Uint64
	refused    atomic.Uint64
}

// NewBudget returns a budget that grants ratio retries per success (0 <
// ratio <= 1), holding at most burst tokens (at least one, so that a
// fraction of a retry can add up to one). It starts with burst tokens, so
// that a process that has not published yet may retry burst times.
func NewBudget(ratio float64, burst int) (*Budget, error) {
	if !(ratio > 0 && ratio <= 1) || burst < 0 {
		return nil, fmt.Errorf("retry budget: ratio %v must be in (0, 1], burst %d not negative", ratio, burst)
	}
	b := &Budget{perSuccess: int64(ratio*1000 + 0.5), max: max(int64(burst)*1000, 1000)}
	b.tokens.Store(int64(burst) * 1000)
	return b, nil
}

// Success records a successful publish: it deposits its share of a token.
func (b *Budget) Success() {
	for {
		t := b.tokens.Load()
		if t >= b.max {
			return
		}
		if b.tokens.CompareAndSwap(t, min(t+b.perSuccess, b.max)) {
			return
		}
	}
}

// Withdraw asks for one retry: true grants it (and spends a token), false
// refuses it and counts the refusal.
func (b *Budget) Withdraw() bool {
	for {
		t := b.tokens.Load()
		if t < 1000 {
			b.refused.Add(1)
			return false
		}
		if b.tokens.CompareAndSwap(t, t-1000) {
			b.granted.Add(1)
			return true
		}
	}
}

// Granted returns the number of retries granted so far (a counter).
func (b *Budget) Granted() uint64 { return b.granted.Load() }

// Refused returns the number of retries refused so far (a counter).
func (b *Budget) Refused() uint64 { return b.refused.Load() }
