package benchmarks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
	"github.com/sluice-dev/sluice/schemas"
)

// suite is a suite run in progress: the processes it started and what it
// has measured so far.
type suite struct {
	o           Options
	log         *slog.Logger
	instruments []schemas.Instrument
	children    []*child
	nats        *child
	systems     map[string]*system
	// sink is the OTLP trace sink of the traced pipeline, started on
	// first use; sinkRequests and sinkBytes count what it received.
	sink                    *otlpSink
	sinkRequests, sinkBytes atomic.Int64
	observers               map[string]*loadgen.Observer
	certFile                string
	keyFile                 string
	clientTLS               *tls.Config
	// capacity is the publish scenario's maximum (req/s), the unit of the
	// sweep and the overload.
	capacity float64
	// unloadedP99 is the sweep's p99 at its lowest offered rate (ms).
	unloadedP99 float64
	unloadedHow string
	// h2load is the path of h2load, "" when the cross-check does not run;
	// h2loads its runs by variant.
	h2load  string
	h2loads map[string]*H2Load
	// skipped lists, by scenario, the rows left out and why (nginx absent).
	skipped map[string][]string
}

// Run runs the scenarios of o and returns what they measured. It starts
// every process it needs and stops them before it returns. On error the
// results hold the scenarios that completed.
func Run(ctx context.Context, o Options) (*Results, error) {
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &suite{o: o, log: o.Logger, instruments: sampleInstruments(), systems: map[string]*system{},
		observers: map[string]*loadgen.Observer{}, h2loads: map[string]*H2Load{}, skipped: map[string][]string{}}
	start := time.Now()
	res := &Results{Generated: start.UTC(), Command: o.Command, Machine: describeMachine(), Settings: o.settings()}
	path, why := findH2Load(o.H2Load)
	if path == "" {
		s.log.Info("no h2load cross-check: " + why)
		res.H2Load = why
	} else {
		s.h2load, res.H2Load = path, h2loadVersion(path)
	}
	err := s.runAll(ctx, res)
	err = errors.Join(err, s.close())
	linkNaive(res)
	res.Targets = evaluateTargets(res)
	res.WallTime = time.Since(start)
	res.Machine.LoadAfter = loadAverage()
	return res, err
}

func (s *suite) runAll(ctx context.Context, res *Results) error {
	for _, name := range s.o.Scenarios {
		s.log.Info("scenario", "name", name)
		sr, err := s.scenario(ctx, name)
		if sr != nil {
			res.Scenarios = append(res.Scenarios, *sr)
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
	}
	return nil
}

func (o *Options) settings() Settings {
	return Settings{Proto: o.Proto, Conns: o.Conns, Streams: o.Streams, Warmup: o.Warmup, Duration: o.Duration,
		Rounds: o.Rounds, SweepDuration: o.SweepDuration, OverloadFactor: o.OverloadFactor,
		OverloadDuration: o.OverloadDuration, OverloadStreams: o.OverloadStreams,
		OverloadStageDelay: o.OverloadStageDelay, EdgeOverloadDuration: o.EdgeOverloadDuration, TradeShare: o.TradeShare,
		ScaleStageDelay: o.ScaleStageDelay, ScalePartitions: o.ScalePartitions,
		InvalidShare: o.InvalidShare, SampleEvery: o.SampleEvery, WorkerProcs: o.WorkerProcs, NATSProcs: o.NATSProcs, SingleFormat: string(o.SingleFormat),
		Priority: o.Priority, Quick: o.Quick, H2LoadDuration: o.H2LoadDuration, Profiled: o.ProfileDir != "", Scenarios: o.Scenarios}
}

// close stops every child, most recently started first (the gateways before
// the workers before NATS), and the observers.
func (s *suite) close() error {
	for _, ob := range s.observers {
		ob.Close()
	}
	var errs []error
	for i := len(s.children) - 1; i >= 0; i-- {
		if err := s.children[i].stop(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if s.sink != nil {
		_ = s.sink.srv.Close() // after the traced processes: their last spans are in
		s.log.Info("the traced pipeline's spans", "otlp_exports", s.sinkRequests.Load(), "bytes", s.sinkBytes.Load())
	}
	return errors.Join(errs...)
}

// runSpec is one run to measure.
type runSpec struct {
	v        variant
	round    int
	mode     loadgen.Mode
	rate     float64
	duration time.Duration
	warmup   time.Duration
	conns    int
	streams  int
	label    string
	onWindow func(start bool)
}

// measure performs one run against its system and reads the CPU time of
// every process of the system, and of this one, over the window.
func (s *suite) measure(ctx context.Context, spec runSpec) (*Measurement, error) {
	sys, err := s.ensureSystem(ctx, spec.v.system)
	if err != nil {
		return nil, err
	}
	for _, c := range sys.procs {
		if !c.alive() {
			return nil, fmt.Errorf("%s is no longer running; its log:\n%s", c.name, c.tail())
		}
	}
	if spec.v.anchor != nil {
		return s.measureAnchor(ctx, spec, sys)
	}
	payloads, err := loadgen.NewPayloads(s.payloadOptions(spec.v))
	if err != nil {
		return nil, err
	}
	var ob *loadgen.Observer
	if spec.v.e2e {
		if ob, err = s.observer(sys); err != nil {
			return nil, err
		}
	}
	cpu := newCPUSampler(sys.procs)
	// A sluice gateway's refusals by reason, so that a row's 503s say
	// whether they were shedding, backpressure or another bound.
	rej := &rejectionWatch{}
	if sys.edge != nil {
		rej.ops = sys.edge.ops
	}
	// A request-reply run against sluice, a run against its durable
	// pipeline (where a 202 waits for the stream's ack) and a half-rate
	// run read where their time went.
	sw := &stageWatch{}
	if sys.edge != nil && (spec.v.payload.Prefer || sys.name == sysDurable || strings.HasSuffix(spec.v.name, "-half")) &&
		strings.HasPrefix(sys.name, sysSluice) {
		sw.ops = sluiceOps(sys)
	}
	cfg := loadgen.Config{
		Target:   sys.url,
		Client:   loadgen.ClientOptions{Proto: s.o.Proto, Conns: orDefault(spec.conns, s.o.Conns), Streams: orDefault(spec.streams, s.o.Streams), TLS: s.clientTLS},
		Payloads: payloads, Mode: spec.mode, Rate: spec.rate,
		Warmup: orDefault(spec.warmup, s.o.Warmup), Duration: orDefault(spec.duration, s.o.Duration),
		Observer: ob, Label: spec.label, Progress: s.o.Progress,
		SettleQuiet: s.settleQuiet(), SettleMax: s.settleMax(),
		OnWindow: func(start bool) {
			cpu.sample(start)
			rej.hook(start)
			sw.hook(start)
			if spec.onWindow != nil {
				spec.onWindow(start)
			}
		},
	}
	if spec.v.backoff {
		cfg.Backoff = loadgen.DefaultBackoff // an open-loop run ignores it
	}
	if cfg.Label == "" {
		cfg.Label = fmt.Sprintf("%s #%d", spec.v.name, spec.round+1)
	}
	started := time.Now()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if s.o.Progress != nil {
		fmt.Fprintf(s.o.Progress, "%s\n", res)
	}
	if rej.err != nil {
		s.log.Warn("reading the gateway's refusals", "variant", spec.v.name, "err", rej.err)
	}
	if sw.err != nil {
		s.log.Warn("reading the stage histograms", "variant", spec.v.name, "err", sw.err)
	}
	if len(sw.stages) > 0 && s.o.Progress != nil {
		fmt.Fprintf(s.o.Progress, "  where the time went: %s\n", formatStages(res.Latency.P50, res.Latency.P99, sw.stages))
	}
	return &Measurement{Variant: spec.v.name, System: sys.name, Round: spec.round, Started: started.UTC(), Load: res,
		CPU: cpu.result(res.Events), Rejected: rej.delta, Stages: sw.stages}, nil
}

// payloadOptions are the requests of a variant under the suite's options.
func (s *suite) payloadOptions(v variant) loadgen.PayloadOptions {
	po := v.payload
	po.TradeShare, po.InvalidShare, po.SampleEvery = s.o.TradeShare, s.o.InvalidShare, s.o.SampleEvery
	po.Instruments, po.Priority = s.instruments, s.o.Priority
	if v.quotesOnly {
		po.TradeShare = 0
	}
	if v.validOnly {
		po.InvalidShare = 0
	}
	// The naive gateway reads JSON only, as a conventional service would:
	// --format changes what sluice and the baselines are sent.
	if po.Batch <= 1 && s.o.SingleFormat != "" && v.system != sysNaive && v.system != sysNaiveDurable {
		po.Format = s.o.SingleFormat
	}
	return po
}

// settleQuiet is how long the pipeline may stay silent before the
// end-to-end count stops waiting.
func (s *suite) settleQuiet() time.Duration {
	if s.o.Quick {
		return 300 * time.Millisecond
	}
	return time.Second
}

// settleMax bounds the wait for the pipeline to deliver what it accepted.
func (s *suite) settleMax() time.Duration {
	if s.o.Quick {
		return 2 * time.Second
	}
	return 10 * time.Second
}

// orDefault returns v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// cpuSampler reads the CPU time of a set of processes at a window's start
// and end.
type cpuSampler struct {
	procs  []*child
	before []time.Duration
	after  []time.Duration
}

func newCPUSampler(procs []*child) *cpuSampler {
	self := &child{name: "loadgen", role: RoleLoadgen, pid: os.Getpid()}
	all := append(append([]*child{}, procs...), self)
	return &cpuSampler{procs: all, before: make([]time.Duration, len(all)), after: make([]time.Duration, len(all))}
}

func (c *cpuSampler) sample(start bool) {
	dst := c.after
	if start {
		dst = c.before
	}
	for i, p := range c.procs {
		cpu := cpuTime
		if p.tree {
			cpu = treeCPU
		}
		d, err := cpu(p.pid)
		if err == nil {
			dst[i] = d
		}
	}
}

func (c *cpuSampler) result(events uint64) []ProcessCPU {
	out := make([]ProcessCPU, len(c.procs))
	for i, p := range c.procs {
		d := c.after[i] - c.before[i]
		out[i] = ProcessCPU{Name: p.name, Role: p.role, PID: p.pid, Seconds: d.Seconds()}
		if events > 0 {
			out[i].MicrosPerEvent = float64(d.Microseconds()) / float64(events)
		}
	}
	return out
}
