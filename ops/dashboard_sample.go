package ops

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// The dashboard's sampler: once per second, while a page is open, it reads
// the metric sets through the same rewrite as /metrics (exposition.go) and
// turns them into one JSON frame that every open page receives. Nothing is
// counted for the page: it shows the metrics already kept, as a scrape sees
// them. Rates are computed between two samples, quantiles from the le
// buckets as Prometheus' histogram_quantile does.

// quantileWindow is how many past samples the windowed quantiles span.
const quantileWindow = 10

// frameProcess are the process families a frame carries beside sluice's own.
var frameProcess = map[string]bool{
	"process_cpu_seconds_total":     true,
	"process_resident_memory_bytes": true,
	"go_goroutines":                 true,
}

// frame is one sample as the page receives it (JSON).
type frame struct {
	Time   int64         `json:"t"`  // Unix milliseconds
	DT     float64       `json:"dt"` // seconds since the previous sample, 0 on the first
	Window float64       `json:"window"`
	Series []frameSeries `json:"series"`
	Hists  []frameHist   `json:"hists"`
}

// frameSeries is a counter or gauge sample; Rate is per second since the
// previous sample (counters only, null on the first sample).
type frameSeries struct {
	Name   string            `json:"n"`
	Kind   string            `json:"k"`
	Labels map[string]string `json:"l,omitempty"`
	Value  float64           `json:"v"`
	Rate   *float64          `json:"r,omitempty"`
}

// frameHist is one histogram series: its count, the rate of observations
// per second, and p50/p99 over the last Window seconds ("W") and since the
// process started ("All"); null where there are no observations.
type frameHist struct {
	Name   string            `json:"n"`
	Labels map[string]string `json:"l,omitempty"`
	Count  uint64            `json:"c"`
	Rate   *float64          `json:"r,omitempty"`
	P50W   *float64          `json:"p50w"`
	P99W   *float64          `json:"p99w"`
	MeanW  *float64          `json:"meanw"`
	P50    *float64          `json:"p50"`
	P99    *float64          `json:"p99"`
}

// sample is what the sampler keeps of one scrape to diff the next against.
type sample struct {
	at       time.Time
	counters map[string]float64  // name + "{" + labels
	hists    map[string][]uint64 // cumulative counts per bound, then +Inf
	sums     map[string]float64
}

// sampler builds frames from successive scrapes. It is used by one
// goroutine at a time.
type sampler struct {
	extra func(io.Writer)
	sets  []*metrics.Set
	buf   bytes.Buffer
	past  []*sample // oldest first, at most quantileWindow+1
}

// next scrapes the sets and returns the JSON of the frame.
func (sp *sampler) next(now time.Time) ([]byte, error) {
	sp.buf.Reset()
	if sp.extra != nil {
		sp.extra(&sp.buf)
	}
	var registered []string
	for _, s := range sp.sets {
		if s != nil {
			s.WritePrometheus(&sp.buf)
			registered = append(registered, s.ListMetricNames()...)
		}
	}
	metrics.WriteProcessMetrics(&sp.buf)
	var e exposition
	e.parse(sp.buf.Bytes())
	e.addRegistered(registered)

	cur := &sample{at: now, counters: map[string]float64{}, hists: map[string][]uint64{}, sums: map[string]float64{}}
	var prev, oldest *sample
	if n := len(sp.past); n > 0 {
		prev, oldest = sp.past[n-1], sp.past[0]
	}
	f := frame{Time: now.UnixMilli()}
	if prev != nil {
		f.DT = now.Sub(prev.at).Seconds()
	}
	if oldest != nil {
		f.Window = now.Sub(oldest.at).Seconds()
	}
	for _, fam := range e.fams {
		if !strings.HasPrefix(fam.Name, "sluice_") && !frameProcess[fam.Name] {
			continue
		}
		switch {
		case len(fam.hist) > 0:
			for _, s := range fam.hist {
				f.Hists = append(f.Hists, histFrame(fam, s, cur, prev, oldest, f.DT))
			}
		case fam.Type == "counter" || fam.Type == "gauge":
			for _, line := range fam.lines {
				f.Series = append(f.Series, seriesFrame(fam, line, cur, prev, f.DT))
			}
		}
	}
	sp.past = append(sp.past, cur)
	if len(sp.past) > quantileWindow+1 {
		sp.past = append(sp.past[:0], sp.past[1:]...)
	}
	return json.Marshal(f)
}

func seriesFrame(fam *expoFamily, line string, cur, prev *sample, dt float64) frameSeries {
	name, labels, value := splitSample(line)
	v, _ := strconv.ParseFloat(value, 64)
	fs := frameSeries{Name: name, Kind: fam.Type, Labels: parseLabels(labels), Value: v}
	if fam.Type == "counter" {
		key := name + "{" + labels
		cur.counters[key] = v
		if p, ok := prev.counter(key); ok && dt > 0 {
			r := v - p
			if r < 0 { // a reset
				r = v
			}
			r /= dt
			fs.Rate = &r
		}
	}
	return fs
}

func (s *sample) counter(key string) (float64, bool) {
	if s == nil {
		return 0, false
	}
	v, ok := s.counters[key]
	return v, ok
}

func histFrame(fam *expoFamily, s *series, cur, prev, oldest *sample, dt float64) frameHist {
	cum := make([]uint64, len(s.counts))
	var c uint64
	for i, n := range s.counts {
		c += n
		cum[i] = c
	}
	key := fam.Name + "{" + s.labels
	cur.hists[key] = cum
	sum, _ := strconv.ParseFloat(s.sum, 64)
	cur.sums[key] = sum
	h := frameHist{Name: fam.Name, Labels: parseLabels(s.labels), Count: c}
	h.P50 = quantile(0.5, fam.bounds, cum)
	h.P99 = quantile(0.99, fam.bounds, cum)
	if prev != nil && dt > 0 {
		if p, ok := prev.hists[key]; ok && len(p) == len(cum) && cum[len(cum)-1] >= p[len(p)-1] {
			r := float64(cum[len(cum)-1]-p[len(p)-1]) / dt
			h.Rate = &r
		}
	}
	if oldest != nil {
		if o, ok := oldest.hists[key]; ok && len(o) == len(cum) && cum[len(cum)-1] >= o[len(o)-1] {
			d := make([]uint64, len(cum))
			for i := range cum {
				d[i] = cum[i] - min(o[i], cum[i])
			}
			h.P50W = quantile(0.5, fam.bounds, d)
			h.P99W = quantile(0.99, fam.bounds, d)
			if n := d[len(d)-1]; n > 0 {
				m := (sum - oldest.sums[key]) / float64(n)
				h.MeanW = &m
			}
		}
	}
	return h
}

// quantile returns the q-quantile of a histogram with cumulative counts cum
// (one per bound, then +Inf) as Prometheus' histogram_quantile computes it:
// linear interpolation within the bucket where the rank falls, 0 as the
// lower edge of the first bucket, and the highest finite bound when the
// rank falls in the +Inf bucket. It returns nil for an empty histogram.
func quantile(q float64, bounds []float64, cum []uint64) *float64 {
	if len(cum) == 0 || len(cum) != len(bounds)+1 || cum[len(cum)-1] == 0 {
		return nil
	}
	rank := q * float64(cum[len(cum)-1])
	i := 0
	for i < len(cum)-1 && float64(cum[i]) < rank {
		i++
	}
	if i == len(bounds) {
		v := bounds[len(bounds)-1]
		return &v
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bounds[i-1], float64(cum[i-1])
	}
	in := float64(cum[i]) - below
	v := bounds[i]
	if in > 0 {
		v = lo + (bounds[i]-lo)*(rank-below)/in
	}
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

// parseLabels parses `a="x",b="y"` (the text between a sample's braces)
// into a map, undoing the text format's escapes (\\, \", \n).
func parseLabels(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := make(map[string]string)
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return m
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var v strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == 'n' {
					v.WriteByte('\n')
					continue
				}
			}
			v.WriteByte(s[i])
		}
		m[name] = v.String()
		if i >= len(s) {
			return m
		}
		s = strings.TrimPrefix(s[i+1:], ",")
	}
	return m
}
