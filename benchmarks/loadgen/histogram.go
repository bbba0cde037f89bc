package loadgen

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1 µs to
// 120 s with three significant digits (0.1% resolution).
const (
	histLowest  = 1
	histHighest = 120_000_000
	histDigits  = 3
)

// NewHistogram returns an empty latency histogram in microseconds, the
// geometry every histogram of this package shares (so that any two merge
// without loss).
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// recordLatency records d, clamped to the histogram's range.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	_ = h.RecordValue(us)
}

// MergeHistograms returns a new histogram holding the counts of every
// histogram in hs (nil ones are skipped).
func MergeHistograms(hs ...*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	out := NewHistogram()
	for _, h := range hs {
		if h != nil {
			out.Merge(h)
		}
	}
	return out
}

// Latency summarises a latency histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize returns the percentiles of h (microseconds) in milliseconds; a
// nil or empty histogram gives zeros.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// AddCounts adds the counts of src to dst, making dst when it is nil, and
// returns it.
func AddCounts[K comparable](dst, src map[K]uint64) map[K]uint64 {
	for k, n := range src {
		if dst == nil {
			dst = make(map[K]uint64, len(src))
		}
		dst[k] += n
	}
	return dst
}
