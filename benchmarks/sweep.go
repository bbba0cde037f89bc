package benchmarks

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

// SweepPlot is the sweep's SVG file name, written beside RESULTS.md.
const SweepPlot = "sweep.svg"

// ensureCapacity measures the publish maximum unless the publish scenario
// already did.
func (s *suite) ensureCapacity(ctx context.Context, sr *ScenarioResult) error {
	if s.capacity > 0 {
		return nil
	}
	run, err := s.measure(ctx, runSpec{v: variants["publish"], mode: loadgen.Closed, label: "capacity probe"})
	if err != nil {
		return err
	}
	sr.Runs = append(sr.Runs, *run)
	s.capacity = run.Load.ReqPerSec
	sr.Notes = append(sr.Notes, fmt.Sprintf("capacity measured by a closed-loop publish probe: %.0f req/s", s.capacity))
	if s.capacity <= 0 {
		return fmt.Errorf("the capacity probe answered nothing")
	}
	return nil
}

// sweep runs publish open loop at rising fractions of the capacity.
func (s *suite) sweep(ctx context.Context) (*ScenarioResult, error) {
	sr := &ScenarioResult{Name: ScenarioSweep, Title: "sweep: latency against offered rate",
		Description: "Single-event publish, open loop: requests leave at the offered rate whatever the gateway does, " +
			"and latency is measured from each request's intended send time, so queueing past saturation shows. " +
			"Rates are fractions of the publish capacity measured in this run."}
	if err := s.ensureCapacity(ctx, sr); err != nil {
		return sr, err
	}
	sw := &Sweep{Capacity: s.capacity, Plot: SweepPlot}
	sr.Sweep = sw
	v := variants["publish"]
	for _, f := range s.o.SweepFractions {
		rate := f * s.capacity
		run, err := s.measure(ctx, runSpec{v: v, mode: loadgen.Open, rate: rate, duration: s.o.SweepDuration,
			label: fmt.Sprintf("sweep %3.0f%%", f*100)})
		if err != nil {
			return sr, err
		}
		sr.Runs = append(sr.Runs, *run)
		row := aggregate(v, []Measurement{*run})
		sw.Steps = append(sw.Steps, SweepStep{Fraction: f, Offered: run.Load.OfferedPerSec, Achieved: run.Load.ReqPerSec,
			Latency: run.Load.Latency, Dropped: run.Load.Dropped, Errors: run.Load.Errors,
			Shed:      run.Load.Status[http.StatusServiceUnavailable] + run.Load.Status[http.StatusTooManyRequests],
			SystemCPU: row.SystemCPU})
	}
	if len(sw.Steps) > 0 {
		s.unloadedP99, s.unloadedHow = sw.Steps[0].Latency.P99, "the sweep's lowest rate"
	}
	return sr, nil
}

// overload runs publish open loop at OverloadFactor times the capacity,
// with as many streams as the gateway allows, watching the gateway's RSS.
func (s *suite) overload(ctx context.Context) (*ScenarioResult, error) {
	sr := &ScenarioResult{Name: ScenarioOverload, Title: "overload: open loop past capacity",
		Description: fmt.Sprintf("Single-event publish offered at %g× the measured capacity, open loop, with %d requests "+
			"in flight per connection (past the gateway's stream limit they wait in the generator, and their latency, "+
			"measured from each request's intended time, shows it). Goodput is "+
			"good answers per second; shed answers are 429 and 503. Two runs: first the one the targets are about, "+
			"where the worker group is the bottleneck: a second pipeline on the same NATS server whose quotes worker "+
			"waits %s per event, one batch at a time (`sluice worker --stage-delay %s --concurrency 1`: a slow "+
			"downstream, which takes no CPU from the gateway on this small machine), offered quotes only, so the "+
			"gateway must shed by queue depth; then one where the gateway's own CPU is the bottleneck (the fast "+
			"pipeline, quotes and trades, at %g× its publish capacity).",
			s.o.OverloadFactor, s.o.OverloadStreams, s.o.OverloadStageDelay, s.o.OverloadStageDelay, s.o.OverloadFactor)}
	if s.o.overloadRun(OverloadWorkers) {
		ov, err := s.workerOverload(ctx, sr)
		if err != nil {
			return sr, err
		}
		sr.Overload = ov
	}
	if !s.o.overloadRun(OverloadGateway) {
		return sr, nil
	}
	if err := s.ensureCapacity(ctx, sr); err != nil {
		return sr, err
	}
	if s.unloadedP99 == 0 {
		// No sweep in this run: its lowest step, measured here.
		f := s.o.SweepFractions[0]
		run, err := s.measure(ctx, runSpec{v: variants["publish"], mode: loadgen.Open, rate: f * s.capacity,
			duration: s.o.SweepDuration, label: "unloaded"})
		if err != nil {
			return sr, err
		}
		sr.Runs = append(sr.Runs, *run)
		s.unloadedP99 = run.Load.Latency.P99
		s.unloadedHow = fmt.Sprintf("open-loop publish at %.0f%% of the capacity", f*100)
	}
	edge, err := s.overloadRun(ctx, sr, variants["publish"], s.capacity, s.o.EdgeOverloadDuration, "overload (gateway)")
	if err != nil {
		return sr, err
	}
	edge.Bottleneck = "gateway"
	edge.CapacityHow = "closed-loop publish maximum of the fast pipeline"
	if s.unloadedP99 > 0 {
		edge.UnloadedP99, edge.UnloadedHow = s.unloadedP99, s.unloadedHow
	}
	// The trivial server offered the same rate over the same streams: no
	// admission in a Go HTTP/2 server answers faster than it does.
	ref, err := s.measure(ctx, runSpec{v: variants["baseline-plain"], mode: loadgen.Open, rate: s.o.OverloadFactor * s.capacity,
		duration: s.o.EdgeOverloadDuration, streams: s.o.OverloadStreams, label: "baseline, same rate"})
	if err != nil {
		return sr, err
	}
	sr.Runs = append(sr.Runs, *ref)
	edge.Reference, edge.ReferenceRate = &ref.Load.Latency, ref.Load.ReqPerSec
	sr.EdgeOverload = edge
	return sr, nil
}

// workerOverload measures the slowed pipeline's capacity with closed-loop
// request-reply (every answer waited for a worker), its unloaded p99 with
// open-loop publish at a tenth of that, then overloads it. The probe keeps
// 64 requests in flight: enough to keep the one-batch-at-a-time
// worker busy, few enough that the queue they make stays under the
// gateway's adaptive limit, which would otherwise trim the probe below the
// workers' capacity (it exists to keep admitted latency low).
func (s *suite) workerOverload(ctx context.Context, sr *ScenarioResult) (*Overload, error) {
	const probeConns, probeStreams = 2, 32
	probe, err := s.measure(ctx, runSpec{v: variants["slow-request"], mode: loadgen.Closed, conns: probeConns,
		streams: probeStreams, duration: s.o.Duration * 3 / 5, label: "slow capacity"})
	if err != nil {
		return nil, err
	}
	sr.Runs = append(sr.Runs, *probe)
	capacity := probe.Load.ReqPerSec
	if capacity <= 0 {
		return nil, fmt.Errorf("the slowed pipeline's capacity probe answered nothing")
	}
	pub := variants["slow-publish"]
	unloaded, err := s.measure(ctx, runSpec{v: pub, mode: loadgen.Open, rate: capacity / 10, duration: s.o.Duration * 3 / 5,
		label: "slow unloaded"})
	if err != nil {
		return nil, err
	}
	sr.Runs = append(sr.Runs, *unloaded)
	ov, err := s.overloadRun(ctx, sr, pub, capacity, s.o.OverloadDuration, "overload (workers)")
	if err != nil {
		return nil, err
	}
	ref, err := s.measure(ctx, runSpec{v: variants["baseline-plain"], mode: loadgen.Open, rate: s.o.OverloadFactor * capacity,
		duration: s.o.OverloadDuration, streams: s.o.OverloadStreams, label: "baseline, same rate"})
	if err != nil {
		return nil, err
	}
	sr.Runs = append(sr.Runs, *ref)
	ov.Reference, ov.ReferenceRate = &ref.Load.Latency, ref.Load.ReqPerSec
	ov.Bottleneck = "workers"
	ov.CapacityHow = fmt.Sprintf("closed-loop request-reply on the slowed pipeline, %d in flight (each answer waited for its worker)",
		probeConns*probeStreams)
	ov.UnloadedP99 = unloaded.Load.Latency.P99
	ov.UnloadedHow = fmt.Sprintf("open-loop publish at a tenth of the capacity, %s req/s", thousands(capacity/10))
	return ov, nil
}

// overloadRun offers v at OverloadFactor × capacity for d, open loop,
// watching the gateway's memory.
func (s *suite) overloadRun(ctx context.Context, sr *ScenarioResult, v variant, capacity float64, d time.Duration, label string) (*Overload, error) {
	sys, err := s.ensureSystem(ctx, v.system)
	if err != nil {
		return nil, err
	}
	mon := newRSSMonitor(sys.edge.pid)
	rej := &rejectionWatch{ops: sys.edge.ops}
	var prof *profiler
	if s.o.ProfileDir != "" {
		tag := ""
		if v.system == sysSlow {
			tag = "slow-"
		}
		prof = s.profiler("overload-" + sys.name)
		prof.tag, prof.secs = tag, max(int(d.Seconds()), 1)
	}
	run, err := s.measure(ctx, runSpec{v: v, mode: loadgen.Open, rate: s.o.OverloadFactor * capacity,
		duration: d, streams: s.o.OverloadStreams, label: label, onWindow: func(start bool) {
			mon.hook(start)
			rej.hook(start)
			if prof != nil {
				prof.hook(start)
			}
		}})
	if prof != nil {
		if perr := prof.wait(); perr != nil {
			s.log.Warn("profile", "err", perr)
		}
	}
	if err != nil {
		return nil, err
	}
	if rej.err != nil {
		s.log.Warn("overload: no refusals by reason", "err", rej.err)
	}
	sr.Runs = append(sr.Runs, *run)
	sr.Rows = append(sr.Rows, aggregate(v, []Measurement{*run}))
	ov := overloadResult(run, capacity, mon)
	ov.Rejected = rej.delta
	return ov, nil
}

func overloadResult(run *Measurement, capacity float64, mon *rssMonitor) *Overload {
	l := run.Load
	ov := &Overload{Capacity: capacity, Offered: l.OfferedPerSec, Duration: l.Duration, Goodput: l.ReqPerSec,
		Admitted: l.Latency, ShedLatency: l.Shed, Dropped: l.Dropped, Errors: l.Errors,
		Status: l.Status, E2E: l.E2E}
	ov.Shed = l.Status[http.StatusServiceUnavailable] + l.Status[http.StatusTooManyRequests]
	if capacity > 0 {
		ov.GoodputRatio = l.ReqPerSec / capacity
	}
	ov.PeakRSS, ov.RSS = mon.result()
	ov.RSSBounded = rssBounded(ov.RSS)
	return ov
}

// rssMonitor samples a process's RSS every second during a window, after
// resetting its peak.
type rssMonitor struct {
	pid     int
	mu      sync.Mutex
	samples []int64
	peak    int64
	stop    chan struct{}
	done    chan struct{}
}

func newRSSMonitor(pid int) *rssMonitor {
	return &rssMonitor{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
}

func (m *rssMonitor) hook(start bool) {
	if !start {
		close(m.stop)
		<-m.done
		return
	}
	_ = resetPeakRSS(m.pid)
	go func() {
		defer close(m.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				m.read()
				return
			case <-t.C:
				m.read()
			}
		}
	}()
}

func (m *rssMonitor) read() {
	rss, peak, err := memStatus(m.pid)
	if err != nil {
		return
	}
	m.mu.Lock()
	m.samples = append(m.samples, rss)
	m.peak = max(m.peak, peak)
	m.mu.Unlock()
}

func (m *rssMonitor) result() (int64, []int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak, append([]int64(nil), m.samples...)
}

// rssBounded reports whether memory plateaus rather than grows: the second
// half of the samples peaks within 10% of the first half's peak or, failing
// that, averages within 10% of the first half's average and ends within 10%
// of its peak. The peak alone misreads one GC cycle's high point in the
// second half of a short series as growth (edge overload, 8 samples:
// 99 97 100 105 | 116 93 87 86); the average alone misreads a ramp that has
// flattened (100 120 | 125 128) and misses growth that starts late
// (100 100 100 100 | 95 95 110 125).
func rssBounded(samples []int64) bool {
	if len(samples) < 2 {
		return len(samples) == 1
	}
	half := len(samples) / 2
	peak := func(s []int64) (m float64) {
		for _, v := range s {
			m = max(m, float64(v))
		}
		return m
	}
	mean := func(s []int64) float64 {
		var t float64
		for _, v := range s {
			t += float64(v)
		}
		return t / float64(len(s))
	}
	first, second := samples[:half], samples[half:]
	last := float64(samples[len(samples)-1])
	return peak(second) <= 1.1*peak(first) ||
		mean(second) <= 1.1*mean(first) && last <= 1.1*peak(first)
}
