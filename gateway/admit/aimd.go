package admit

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// AIMDOptions configure an [AIMD] limiter; the zero value means defaults.
type AIMDOptions struct {
	// Min and Max bound the limit; Initial is where it starts.
	Min, Max, Initial int
	// Tolerance: a completion slower than Floor*Tolerance+Slack counts as
	// congestion. Floor is the lowest recent latency.
	Tolerance float64
	// Slack is added to the congestion threshold so that very fast floors
	// (microseconds) do not make ordinary jitter look like congestion.
	Slack time.Duration
	// Backoff multiplies the limit on congestion or timeout.
	Backoff float64
}

func (o *AIMDOptions) setDefaults() {
	if o.Min <= 0 {
		o.Min = 8
	}
	if o.Max <= 0 {
		o.Max = 16384
	}
	if o.Initial <= 0 {
		o.Initial = o.Max / 4
	}
	o.Initial = min(max(o.Initial, o.Min), o.Max)
	if o.Tolerance <= 0 {
		o.Tolerance = 4
	}
	if o.Slack <= 0 {
		o.Slack = 100 * time.Millisecond
	}
	if o.Backoff <= 0 || o.Backoff >= 1 {
		o.Backoff = 0.9
	}
}

// AIMD is an adaptive concurrency limit: additive increase (about +1 per
// limit's worth of completions, i.e. per round trip) while latency stays
// near its floor, multiplicative decrease (×Backoff, at most once per floor
// interval) when latency rises past the threshold or a request times out.
// Acquire and Release are lock-free on the admitted path except for the
// rare decrease.
type AIMD struct {
	opts     AIMDOptions
	limit    atomic.Uint64 // float64 bits
	inflight atomic.Int64
	floor    atomic.Int64 // ns; lowest recent latency
	mu       sync.Mutex
	lastDrop time.Time
}

// NewAIMD returns a limiter at opts.Initial.
func NewAIMD(opts AIMDOptions) *AIMD {
	opts.setDefaults()
	a := &AIMD{opts: opts}
	a.limit.Store(math.Float64bits(float64(opts.Initial)))
	a.floor.Store(int64(time.Second))
	return a
}

// Limit returns the current limit.
func (a *AIMD) Limit() int { return int(math.Float64frombits(a.limit.Load())) }

// InFlight returns the requests admitted and not yet released.
func (a *AIMD) InFlight() int64 { return a.inflight.Load() }

// Acquire takes a slot without waiting; false means the limit is reached.
func (a *AIMD) Acquire() bool {
	if a.inflight.Add(1) > int64(a.Limit()) {
		a.inflight.Add(-1)
		return false
	}
	return true
}

// Done returns a slot without a latency sample: for requests whose latency
// says nothing about the group's congestion (fire-and-forget publishes).
func (a *AIMD) Done() { a.inflight.Add(-1) }

// Release returns a slot, feeding the request's latency (and whether it
// failed by timeout or overload) into the limit.
func (a *AIMD) Release(latency time.Duration, failed bool) {
	a.inflight.Add(-1)
	fl := time.Duration(a.floor.Load())
	if !failed && latency < fl {
		a.floor.Store(int64(latency))
		fl = latency
	} else if !failed {
		// Let the floor drift up slowly, so it follows a real change
		// of the service time rather than one lucky sample.
		a.floor.Add(int64(latency-fl) >> 10)
	}
	threshold := time.Duration(float64(fl)*a.opts.Tolerance) + a.opts.Slack
	if failed || latency > threshold {
		a.decrease(threshold)
		return
	}
	for {
		old := a.limit.Load()
		l := math.Float64frombits(old)
		if l >= float64(a.opts.Max) {
			return
		}
		n := min(l+1/l, float64(a.opts.Max))
		if a.limit.CompareAndSwap(old, math.Float64bits(n)) {
			return
		}
	}
}

func (a *AIMD) decrease(window time.Duration) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.lastDrop) < window {
		return
	}
	a.lastDrop = now
	l := math.Float64frombits(a.limit.Load())
	a.limit.Store(math.Float64bits(max(l*a.opts.Backoff, float64(a.opts.Min))))
}
