package benchmarks

import (
	"time"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

// Results are everything a suite run measured; RESULTS.md and results.json
// are rendered from them.
type Results struct {
	Generated time.Time     `json:"generated"`
	Command   string        `json:"command"`
	Machine   Machine       `json:"machine"`
	Settings  Settings      `json:"settings"`
	WallTime  time.Duration `json:"wall_time_ns"`
	// H2Load is the version of h2load that cross-checked the throughput
	// rows, or why none did.
	H2Load    string           `json:"h2load"`
	Scenarios []ScenarioResult `json:"scenarios"`
	Targets   []Target         `json:"targets"`
}

// Settings are the options a run used, defaults filled in.
type Settings struct {
	Proto            loadgen.Proto `json:"proto"`
	Conns            int           `json:"conns"`
	Streams          int           `json:"streams"`
	Warmup           time.Duration `json:"warmup_ns"`
	Duration         time.Duration `json:"duration_ns"`
	Rounds           int           `json:"rounds"`
	SweepDuration    time.Duration `json:"sweep_duration_ns"`
	OverloadFactor   float64       `json:"overload_factor"`
	OverloadDuration time.Duration `json:"overload_duration_ns"`
	OverloadStreams  int           `json:"overload_streams"`
	// OverloadStageDelay slows the overload pipeline's quotes worker.
	OverloadStageDelay   time.Duration `json:"overload_stage_delay_ns"`
	EdgeOverloadDuration time.Duration `json:"edge_overload_duration_ns"`
	// ScaleStageDelay slows the scale scenario's quotes workers;
	// ScalePartitions is their --partitions, 0 for the default.
	ScaleStageDelay time.Duration `json:"scale_stage_delay_ns,omitempty"`
	ScalePartitions int           `json:"scale_partitions,omitempty"`
	TradeShare      float64       `json:"trade_share"`
	InvalidShare    float64       `json:"invalid_share"`
	SampleEvery     int           `json:"e2e_sample_every"`
	// WorkerProcs and NATSProcs are the GOMAXPROCS of the workers and of
	// the NATS server; 0 is Go's default.
	WorkerProcs  int    `json:"worker_procs"`
	NATSProcs    int    `json:"nats_procs"`
	SingleFormat string `json:"single_format,omitempty"`
	Priority     string `json:"priority,omitempty"`
	Quick        bool   `json:"quick"`
	// H2LoadDuration is the measured window of each h2load cross-check.
	H2LoadDuration time.Duration `json:"h2load_duration_ns,omitempty"`
	// Profiled is set when CPU profiles were taken (--profile): they cost
	// the first round of every sluice variant some CPU, not the baselines.
	Profiled  bool     `json:"profiled,omitempty"`
	Scenarios []string `json:"scenarios"`
}

// ScenarioResult is one scenario: its table rows (one per variant, rounds
// aggregated) and the raw runs they come from.
type ScenarioResult struct {
	Name        string        `json:"name"`
	Title       string        `json:"title"`
	Description string        `json:"description"`
	Rows        []Row         `json:"rows"`
	Runs        []Measurement `json:"runs"`
	Notes       []string      `json:"notes,omitempty"`
	Sweep       *Sweep        `json:"sweep,omitempty"`
	// Overload is the run where the worker group is the bottleneck (the
	// targets' run); EdgeOverload the one where the gateway's CPU is.
	Overload     *Overload `json:"overload,omitempty"`
	EdgeOverload *Overload `json:"edge_overload,omitempty"`
	// Scale is the scale scenario's figures.
	Scale *Scale `json:"scale,omitempty"`
}

// System kinds: what each row of results.json measured (Row.Kind).
const (
	KindBaseline = "baseline"
	KindSluice   = "sluice"
	KindNaive    = "naive"
	// KindAnchor is the NATS server storing on its own (no HTTP): the
	// durable rows' limit.
	KindAnchor = "anchor"
)

// Row is one variant of a scenario, its rounds aggregated: rates are totals
// over the rounds' windows, latencies come from the merged histograms, CPU
// per event is total CPU over total events.
type Row struct {
	Variant      string          `json:"variant"`
	Label        string          `json:"label"`
	Kind         string          `json:"kind"`
	Rounds       int             `json:"rounds"`
	ReqPerSec    float64         `json:"req_per_sec"`
	EventsPerSec float64         `json:"events_per_sec"`
	Latency      loadgen.Latency `json:"latency"`
	// CPU is CPU microseconds per event by role; SystemCPU sums the roles
	// of the system under test (all but the load generator).
	CPU       map[Role]float64 `json:"cpu_us_per_event"`
	SystemCPU float64          `json:"system_cpu_us_per_event"`
	// Baseline is the variant this row is compared with in the same
	// scenario, VsBaseline the ratio of rates (events/s for batches,
	// req/s otherwise) and RoundRatios the ratio in each round.
	Baseline    string    `json:"baseline,omitempty"`
	VsBaseline  float64   `json:"vs_baseline,omitempty"`
	RoundRatios []float64 `json:"round_ratios,omitempty"`
	// Naive is the naive pipeline's variant of the same shape and VsNaive
	// this row's events/s over it.
	Naive   string  `json:"naive,omitempty"`
	VsNaive float64 `json:"vs_naive,omitempty"`
	// Offered is the offered rate of an open-loop row.
	Offered float64 `json:"offered_per_sec,omitempty"`
	Errors  uint64  `json:"errors"`
	// ErrorKinds counts a few of the errors' messages.
	ErrorKinds map[string]uint64 `json:"error_kinds,omitempty"`
	Dropped    uint64            `json:"dropped_by_generator"`
	Status     map[int]uint64    `json:"status"`
	// Rejected sums the runs' Measurement.Rejected.
	Rejected map[string]float64 `json:"rejected_by_reason,omitempty"`
	E2E      *loadgen.E2E       `json:"e2e,omitempty"`
	// H2Load is h2load's run of the same shape against the same server,
	// in the same suite run (once per variant: rows of a variant in
	// several scenarios show the same run).
	H2Load *H2Load `json:"h2load,omitempty"`
}

// Measurement is one measured window: a run of the load generator.
type Measurement struct {
	Variant string          `json:"variant"`
	System  string          `json:"system"`
	Round   int             `json:"round"`
	Started time.Time       `json:"started"`
	Load    *loadgen.Result `json:"load"`
	CPU     []ProcessCPU    `json:"cpu"`
	// Rejected counts a sluice gateway's refusals over the window by
	// reason (sluice_gateway_rejected_total).
	Rejected map[string]float64 `json:"rejected_by_reason,omitempty"`
	// Stages is where a request-reply, durable or half-rate run's latency
	// went, stage by stage, from the gateway's and workers' stage
	// histograms over the window.
	Stages []StageLatency `json:"stages,omitempty"`
}

// ProcessCPU is the CPU time one process used during a run's window.
type ProcessCPU struct {
	Name           string  `json:"name"`
	Role           Role    `json:"role"`
	PID            int     `json:"pid"`
	Seconds        float64 `json:"cpu_seconds"`
	MicrosPerEvent float64 `json:"us_per_event"`
}

// Sweep is latency against offered rate.
type Sweep struct {
	// Capacity is the publish scenario's closed-loop maximum (req/s), the
	// unit of the steps.
	Capacity float64     `json:"capacity"`
	Steps    []SweepStep `json:"steps"`
	// Plot is the SVG file's name, beside RESULTS.md.
	Plot string `json:"plot,omitempty"`
}

// SweepStep is one offered rate.
type SweepStep struct {
	Fraction float64         `json:"fraction"`
	Offered  float64         `json:"offered_per_sec"`
	Achieved float64         `json:"achieved_per_sec"`
	Latency  loadgen.Latency `json:"latency"`
	Dropped  uint64          `json:"dropped_by_generator"`
	Errors   uint64          `json:"errors"`
	Shed     uint64          `json:"shed"`
	// SystemCPU is CPU µs per event of the system under test.
	SystemCPU float64 `json:"system_cpu_us_per_event"`
}

// Overload is an open-loop run past capacity.
type Overload struct {
	// Bottleneck names what sets the capacity: the slowed worker group or
	// the gateway; CapacityHow says how the capacity was measured.
	Bottleneck  string  `json:"bottleneck"`
	CapacityHow string  `json:"capacity_how"`
	Capacity    float64 `json:"capacity"`
	// UnloadedHow says where the unloaded p99 comes from.
	UnloadedHow string        `json:"unloaded_how,omitempty"`
	Offered     float64       `json:"offered_per_sec"`
	Duration    time.Duration `json:"duration_ns"`
	// Goodput is good answers per second; GoodputRatio over Capacity.
	Goodput      float64 `json:"goodput"`
	GoodputRatio float64 `json:"goodput_ratio"`
	// Admitted is the latency of good answers, from intended send time;
	// UnloadedP99 the p99 without overload (see UnloadedHow).
	Admitted    loadgen.Latency `json:"admitted_latency"`
	UnloadedP99 float64         `json:"unloaded_p99_ms,omitempty"`
	// Shed counts 429 and 503 answers and ShedLatency their latency.
	Shed        uint64          `json:"shed"`
	ShedLatency loadgen.Latency `json:"shed_latency"`
	// Rejected counts the gateway's refusals during the window by reason
	// (its sluice_gateway_rejected_total), so a reader sees what the 503s
	// were: queue-depth shedding, the concurrency limit, or another bound.
	Rejected map[string]float64 `json:"rejected_by_reason,omitempty"`
	// Reference is the latency of the trivial baseline server offered the
	// same rate over the same connections for the same time: the floor
	// this machine and generator put under any answer, shed or not.
	Reference *loadgen.Latency `json:"baseline_same_rate,omitempty"`
	// ReferenceRate is the answers per second that server gave.
	ReferenceRate float64        `json:"baseline_same_rate_answers,omitempty"`
	Dropped       uint64         `json:"dropped_by_generator"`
	Errors        uint64         `json:"errors"`
	Status        map[int]uint64 `json:"status"`
	// PeakRSS is the gateway's VmHWM over the run (bytes), RSS its VmRSS
	// each second; RSSBounded tells whether memory plateaued (see
	// rssBounded).
	PeakRSS    int64        `json:"gateway_peak_rss"`
	RSS        []int64      `json:"gateway_rss"`
	RSSBounded bool         `json:"rss_bounded"`
	E2E        *loadgen.E2E `json:"e2e,omitempty"`
}

// Target statuses.
const (
	Met    = "met"
	NotMet = "not met"
	NA     = "n/a"
	// Reported is a figure the targets ask for without a bound.
	Reported = "reported"
)

// Target is one performance target of DESIGN.md and whether this run met
// it.
type Target struct {
	Name   string `json:"name"`
	Goal   string `json:"goal"`
	Figure string `json:"figure"`
	Status string `json:"status"`
}
