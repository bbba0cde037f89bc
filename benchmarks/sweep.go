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
		s.unloadedP99 = sw.Steps[0].Latency.P99
	}
	return sr, nil
}

// overload runs publish open loop at OverloadFactor times the capacity,
// with as many streams as the gateway allows, watching the gateway's RSS.
func (s *suite) overload(ctx context.Context) (*ScenarioResult, error) {
	sr := &ScenarioResult{Name: ScenarioOverload, Title: "overload: open loop past capacity",
		Description: fmt.Sprintf("Single-event publish offered at %.0f× the measured capacity, open loop, with %d streams "+
			"per connection so that the excess reaches the gateway rather than queueing in the generator. Goodput is "+
			"good answers per second; shed answers are 429 and 503.", s.o.OverloadFactor, s.o.OverloadStreams)}
	if err := s.ensureCapacity(ctx, sr); err != nil {
		return sr, err
	}
	sys, err := s.ensureSystem(ctx, sysSluice)
	if err != nil {
		return sr, err
	}
	mon := newRSSMonitor(sys.edge.pid)
	v := variants["publish"]
	run, err := s.measure(ctx, runSpec{v: v, mode: loadgen.Open, rate: s.o.OverloadFactor * s.capacity,
		duration: s.o.OverloadDuration, streams: s.o.OverloadStreams, label: "overload", onWindow: mon.hook})
	if err != nil {
		return sr, err
	}
	sr.Runs = append(sr.Runs, *run)
	sr.Rows = append(sr.Rows, aggregate(v, []Measurement{*run}))
	sr.Overload = s.overloadResult(run, mon)
	return sr, nil
}

func (s *suite) overloadResult(run *Measurement, mon *rssMonitor) *Overload {
	l := run.Load
	ov := &Overload{Capacity: s.capacity, Offered: l.OfferedPerSec, Duration: l.Duration, Goodput: l.ReqPerSec,
		Admitted: l.Latency, UnloadedP99: s.unloadedP99, ShedLatency: l.Shed, Dropped: l.Dropped, Errors: l.Errors,
		Status: l.Status, E2E: l.E2E}
	ov.Shed = l.Status[http.StatusServiceUnavailable] + l.Status[http.StatusTooManyRequests]
	if s.capacity > 0 {
		ov.GoodputRatio = l.ReqPerSec / s.capacity
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

// rssBounded reports whether the second half of the samples peaks within
// 10% of the first half's peak: memory that plateaus rather than grows.
func rssBounded(samples []int64) bool {
	if len(samples) < 2 {
		return len(samples) == 1
	}
	half := len(samples) / 2
	var first, second int64
	for _, v := range samples[:half] {
		first = max(first, v)
	}
	for _, v := range samples[half:] {
		second = max(second, v)
	}
	return float64(second) <= 1.1*float64(first)
}
