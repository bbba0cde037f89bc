package benchmarks

import (
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/gateway/admit"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

// The scenarios, in the order a full run takes them.
const (
	ScenarioBaseline = "baseline"
	ScenarioNaive    = "naive"
	ScenarioPublish  = "publish"
	ScenarioRequest  = "request"
	ScenarioBatch    = "batch"
	ScenarioEdge     = "edge"
	ScenarioDurable  = "durable"
	ScenarioSweep    = "sweep"
	ScenarioOverload = "overload"
)

// Scenarios lists every scenario in run order.
var Scenarios = []string{ScenarioBaseline, ScenarioNaive, ScenarioPublish, ScenarioRequest,
	ScenarioBatch, ScenarioEdge, ScenarioDurable, ScenarioSweep, ScenarioOverload}

// DefaultOverloadStreams is the overload's streams per connection: 16 × 250
// requests in flight, more than the gateway's limit of 32 per connection,
// so that the excess waits somewhere the latency shows (in the generator,
// from each request's intended time, past the gateway's limit) instead of
// being dropped by the generator's in-flight bound.
const DefaultOverloadStreams = 250

// The overload's runs (Options.OverloadRuns).
const (
	OverloadWorkers = "workers"
	OverloadGateway = "gateway"
)

// Launcher returns the command that runs the sluice binary with args; the
// suite starts every process it measures through it.
type Launcher func(args ...string) *exec.Cmd

// Options configure a suite run. The zero value of a field means its
// default; Launcher is required.
type Options struct {
	// Scenarios to run, in the order of [Scenarios]; default all.
	Scenarios []string
	// Proto, Conns and Streams shape the connections; default h2c, 16 x 32.
	Proto   loadgen.Proto
	Conns   int
	Streams int
	// Warmup and Duration are the unmeasured and measured parts of every
	// run; default 500 ms and 5 s.
	Warmup   time.Duration
	Duration time.Duration
	// Rounds is how many times each scenario's runs alternate with their
	// baselines; default 2 (1 with Quick). The naive scenario, a reference
	// point, always runs one round.
	Rounds int
	// SweepFractions are the offered rates of the sweep as fractions of the
	// measured publish capacity; SweepDuration is each step's window
	// (default two fifths of Duration, at least 1 s).
	SweepFractions []float64
	SweepDuration  time.Duration
	// OverloadFactor times the capacity is the overload's offered rate
	// (default 3) for OverloadDuration (default 30 s), with OverloadStreams
	// requests in flight per connection (default [DefaultOverloadStreams]:
	// the excess waits, in the gateway or past its stream limit in the
	// generator, rather than being dropped by the generator's bound).
	OverloadFactor   float64
	OverloadDuration time.Duration
	OverloadStreams  int
	// OverloadStageDelay is the wait each event costs the slowed quotes
	// worker of the overload's pipeline (default 1 ms: at most 1,000
	// quotes/s from one batch at a time), so that the worker group is the
	// bottleneck the gateway's admission must protect. A wait, not burnt
	// CPU: on a 2-core machine a spinning worker would take a core from
	// the gateway and the generator and measure the machine, not admission.
	OverloadStageDelay time.Duration
	// ScaleStageDelay is the wait per event of the scale scenario's slowed
	// quotes workers (default 1 ms: at most 1,000 events/s each), and
	// ScalePartitions their group's partitions, passed as --partitions to
	// its gateway and workers (0: the commands' default).
	ScaleStageDelay time.Duration
	ScalePartitions int
	// EdgeOverloadDuration is the length of the second overload run, where
	// the gateway's own CPU is the bottleneck (default 8 s).
	EdgeOverloadDuration time.Duration
	// OverloadRuns chooses the overload's runs: [OverloadWorkers],
	// [OverloadGateway] or both (default both, in that order). The gateway
	// run alone measures its own unloaded p99 (open loop at a tenth of the
	// capacity) when the sweep does not run.
	OverloadRuns []string
	// WorkerProcs is the workers' --procs (GOMAXPROCS; 0 is Go's default)
	// and NATSProcs the NATS server's; the zero Options mean 1 for the
	// workers (their own default) and Go's default for NATS. Negative
	// WorkerProcs also means Go's default.
	WorkerProcs int
	NATSProcs   int
	// TradeShare and InvalidShare shape the payloads (see
	// loadgen.PayloadOptions); negative means none, zero the default.
	TradeShare   float64
	InvalidShare float64
	// SingleFormat is the body format of single-event runs: json (default),
	// msgpack or ce-binary (CloudEvents binary mode).
	SingleFormat loadgen.Format
	// Priority, when set, is sent as the Sluice-Priority header of every
	// request (the gateway sheds lower priorities first).
	Priority string
	// H2Load is the h2load binary that cross-checks every closed-loop
	// throughput row (see [H2Load]); default "h2load" from PATH, skipped
	// with a note where it is missing; [H2LoadOff] turns it off.
	// H2LoadDuration is each of its runs' window (default three tenths of
	// Duration, at least 1 s), after Warmup.
	H2Load         string
	H2LoadDuration time.Duration
	// SampleEvery is the end-to-end sample: one symbol in SampleEvery is
	// matched by id; default 8.
	SampleEvery int
	// Quick runs every scenario for a second or two, for CI smoke tests:
	// no figure of a quick run means anything.
	Quick bool
	// Launcher starts the sluice binary.
	Launcher Launcher
	// WorkDir holds the child processes' logs, the NATS store and the TLS
	// files. Required.
	WorkDir string
	// ProfileDir, when set, receives CPU profiles of the gateway, the
	// quotes worker and the load generator taken during the first round of
	// every sluice variant (gateway-publish.pprof, ...).
	ProfileDir string
	// Command is the command line recorded in the report.
	Command string
	// Progress receives the live progress lines; nil is quiet.
	Progress io.Writer
	// Logger receives the suite's own messages; nil discards them.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if len(o.Scenarios) == 0 {
		o.Scenarios = slices.Clone(Scenarios)
	}
	if o.Proto == "" {
		o.Proto = loadgen.ProtoH2C
	}
	if o.Conns <= 0 {
		o.Conns = loadgen.DefaultConns
	}
	if o.Streams <= 0 {
		o.Streams = loadgen.DefaultStreams
	}
	o.setDurations()
	if o.OverloadFactor <= 0 {
		o.OverloadFactor = 3
	}
	if o.OverloadStreams <= 0 {
		o.OverloadStreams = DefaultOverloadStreams
	}
	switch {
	case o.WorkerProcs == 0:
		o.WorkerProcs = 1
	case o.WorkerProcs < 0:
		o.WorkerProcs = 0
	}
	if len(o.OverloadRuns) == 0 {
		o.OverloadRuns = []string{OverloadWorkers, OverloadGateway}
	}
	if o.OverloadStageDelay <= 0 {
		o.OverloadStageDelay = time.Millisecond
	}
	if o.ScaleStageDelay <= 0 {
		o.ScaleStageDelay = time.Millisecond
	}
	switch {
	case o.TradeShare == 0:
		o.TradeShare = loadgen.DefaultTradeShare
	case o.TradeShare < 0:
		o.TradeShare = 0
	}
	switch {
	case o.InvalidShare == 0:
		o.InvalidShare = loadgen.DefaultInvalidShare
	case o.InvalidShare < 0:
		o.InvalidShare = 0
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = loadgen.DefaultSampleEvery
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) setDurations() {
	def := func(v *time.Duration, full, quick time.Duration) {
		if *v <= 0 {
			*v = full
			if o.Quick {
				*v = quick
			}
		}
	}
	def(&o.Warmup, 500*time.Millisecond, 150*time.Millisecond)
	def(&o.Duration, 5*time.Second, 400*time.Millisecond)
	def(&o.SweepDuration, max(o.Duration*2/5, time.Second), 250*time.Millisecond)
	def(&o.OverloadDuration, 30*time.Second, 800*time.Millisecond)
	def(&o.EdgeOverloadDuration, 8*time.Second, 400*time.Millisecond)
	def(&o.H2LoadDuration, max(o.Duration*3/10, time.Second), 300*time.Millisecond)
	if o.Rounds <= 0 {
		o.Rounds = 2
		if o.Quick {
			o.Rounds = 1
		}
	}
	if len(o.SweepFractions) == 0 {
		o.SweepFractions = []float64{0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5}
		if o.Quick {
			o.SweepFractions = []float64{0.25, 1, 1.5}
		}
	}
}

// Validate reports the first option that cannot work.
func (o *Options) Validate() error {
	if o.Launcher == nil {
		return errors.New("bench: a launcher is required")
	}
	if o.WorkDir == "" {
		return errors.New("bench: a work directory is required")
	}
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("unknown scenario %q: want one of %s or all", s, strings.Join(Scenarios, ", "))
		}
	}
	if _, err := loadgen.ParseProto(string(o.Proto)); err != nil {
		return err
	}
	if o.NATSProcs < 0 {
		return errors.New("bench: NATSProcs must not be negative")
	}
	if o.OverloadStageDelay < 0 || o.EdgeOverloadDuration < 0 || o.OverloadDuration < 0 {
		return errors.New("bench: the overload's durations and stage delay must not be negative")
	}
	if o.ScaleStageDelay < 0 || o.ScalePartitions < 0 {
		return errors.New("bench: the scale scenario's stage delay and partitions must not be negative")
	}
	for _, r := range o.OverloadRuns {
		if r != OverloadWorkers && r != OverloadGateway {
			return fmt.Errorf("bench: overload run %q: want %s or %s", r, OverloadWorkers, OverloadGateway)
		}
	}
	if o.SingleFormat == loadgen.FormatNDJSON {
		return errors.New("bench: single events are json, msgpack or ce-binary")
	}
	if _, ok := admit.ParsePriority(o.Priority); o.Priority != "" && !ok {
		return fmt.Errorf("bench: priority %q: want low, normal, high or critical", o.Priority)
	}
	return nil
}

// ParseScenarios splits a comma-separated list; "all" or "" is every
// scenario.
func ParseScenarios(s string) ([]string, error) {
	if s == "" || s == "all" {
		return slices.Clone(Scenarios), nil
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(Scenarios, name) {
			return nil, fmt.Errorf("unknown scenario %q: want one of %s or all", name, strings.Join(Scenarios, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	// Keep run order: the sweep and overload use the publish capacity.
	slices.SortStableFunc(out, func(a, b string) int {
		return slices.Index(Scenarios, a) - slices.Index(Scenarios, b)
	})
	return out, nil
}

func (o *Options) has(s string) bool { return slices.Contains(o.Scenarios, s) }

// overloadRun reports whether the overload scenario includes run r.
func (o *Options) overloadRun(r string) bool { return slices.Contains(o.OverloadRuns, r) }
