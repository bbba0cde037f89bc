package benchmarks

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// measurement makes a run of variant with fixed figures: reqs good answers
// of perReq events in secs, latencies spread between lo and hi ms, and CPU
// seconds by process.
func measurement(variant, system string, round int, reqs, perReq uint64, lo, hi float64, cpu map[string]float64) Measurement {
	h := loadgen.NewHistogram()
	for i := range 1000 {
		ms := lo + (hi-lo)*float64(i)/999
		_ = h.RecordValue(int64(ms * 1000))
	}
	l := &loadgen.Result{Label: variant, Mode: loadgen.Closed, Duration: 5 * time.Second, Answered: reqs,
		Events: reqs * perReq, Status: map[int]uint64{202: reqs}, Hist: h}
	l.ReqPerSec, l.EventsPerSec = float64(reqs)/5, float64(reqs*perReq)/5
	l.Latency = loadgen.Summarize(h)
	m := Measurement{Variant: variant, System: system, Round: round, Load: l}
	for _, name := range []string{"gateway", "worker-quotes", "nats", "baseline", "loadgen"} {
		if sec, ok := cpu[name]; ok {
			role := map[string]Role{"gateway": RoleEdge, "baseline": RoleEdge, "worker-quotes": RoleWorker,
				"nats": RoleNATS, "loadgen": RoleLoadgen}[name]
			m.CPU = append(m.CPU, ProcessCPU{Name: name, Role: role, Seconds: sec})
		}
	}
	return m
}

// fixtureResults are fixed figures for the report's golden test.
func fixtureResults() *Results {
	base := func(r int, reqs uint64) Measurement {
		return measurement("baseline-plain", "baseline-plain", r, reqs, 1, 1, 9, map[string]float64{"baseline": 2.5, "loadgen": 3})
	}
	pub := func(r int, reqs uint64) Measurement {
		return measurement("publish", "sluice", r, reqs, 1, 1.2, 11, map[string]float64{"gateway": 2.4, "worker-quotes": 0.3, "nats": 0.2, "loadgen": 2.9})
	}
	minimal := func(r int, reqs uint64) Measurement {
		return measurement("publish-minimal", "sluice", r, reqs, 1, 1.1, 10, map[string]float64{"gateway": 2.3, "worker-quotes": 0.3, "nats": 0.2, "loadgen": 2.8})
	}
	def := scenarioDefs[ScenarioPublish]
	runs := []Measurement{base(0, 250_000), pub(0, 230_000), minimal(0, 245_000), minimal(1, 240_000), pub(1, 225_000), base(1, 248_000)}
	publish := ScenarioResult{Name: ScenarioPublish, Title: def.title, Description: def.description, Runs: runs,
		Rows: buildRows(def.order, def.refs, runs)}
	publish.Notes = scenarioNotes(ScenarioPublish, &publish)
	publish.Rows[0].H2Load = &H2Load{ReqPerSec: 51_000, Requests: 76_500, Status: map[string]uint64{"2xx": 76_500}, CPU: 5.1}
	publish.Rows[1].H2Load = &H2Load{ReqPerSec: 46_000, Requests: 69_100, Failed: 2, Status: map[string]uint64{"2xx": 69_000, "5xx": 98}, CPU: 5.3}
	publish.Rows[2].H2Load = &H2Load{Err: "exit status 1: connect error"}
	naiveRuns := []Measurement{measurement("naive-publish", "naive", 0, 60_000, 1, 5, 40,
		map[string]float64{"gateway": 3, "worker-quotes": 1.5, "nats": 0.5, "loadgen": 1})}
	naiveRuns[0].Load.Status[503] = 12
	naiveRuns[0].Load.Errors = 3
	naiveRuns[0].Load.ErrorKinds = map[string]uint64{"context canceled": 2, "EOF": 1}
	naiveRuns[0].Load.E2E = &loadgen.E2E{Accepted: 60_000, Sampled: 7_000, ExpectedRejected: 600, Enriched: 6_400, Rejected: 600}
	naiveSc := ScenarioResult{Name: ScenarioNaive, Title: "naive", Description: "A conventional pipeline.",
		Runs: naiveRuns, Rows: buildRows([]string{"naive-publish"}, nil, naiveRuns)}
	sw := &Sweep{Capacity: 46_000, Plot: SweepPlot}
	for i, f := range []float64{0.1, 0.5, 0.9, 1.2} {
		p50 := []float64{0.4, 0.8, 3, 60}[i]
		sw.Steps = append(sw.Steps, SweepStep{Fraction: f, Offered: f * 46_000, Achieved: min(f, 1) * 46_000,
			Latency: loadgen.Latency{P50: p50, P99: p50 * 4, P999: p50 * 8}, SystemCPU: 12.5, Dropped: uint64(i * i * 100)})
	}
	ov := &Overload{Bottleneck: "workers", CapacityHow: "closed-loop request-reply", UnloadedHow: "a tenth of the capacity",
		Capacity: 46_000, Offered: 138_000, Duration: 30 * time.Second, Goodput: 44_000, GoodputRatio: 44_000.0 / 46_000,
		Admitted: loadgen.Latency{P50: 2, P99: 7.5, P999: 12, Max: 30}, UnloadedP99: 1.6, Shed: 2_500_000,
		ShedLatency: loadgen.Latency{P50: 0.3, P99: 1.2, Max: 4.2}, Reference: &loadgen.Latency{P50: 0.2, P99: 1, P999: 2, Max: 4}, Status: map[int]uint64{202: 1_320_000, 503: 2_500_000},
		PeakRSS: 96 << 20, RSS: []int64{80 << 20, 90 << 20, 92 << 20, 91 << 20}, RSSBounded: true,
		Rejected: map[string]float64{"shed": 2_400_000, "concurrency": 100_000},
		E2E: &loadgen.E2E{Accepted: 1_320_000, Sampled: 165_000, Enriched: 165_000,
			Delay: loadgen.Latency{Count: 165_000, P50: 60, P99: 140, Max: 190}}}
	edge := &Overload{Bottleneck: "gateway", CapacityHow: "closed-loop publish", Capacity: 20_000, Offered: 60_000,
		Duration: 10 * time.Second, Goodput: 19_000, GoodputRatio: 0.95, Admitted: loadgen.Latency{P50: 180, P99: 700, P999: 900, Max: 1000},
		Reference: &loadgen.Latency{P50: 150, P99: 600, P999: 800, Max: 900}, ReferenceRate: 24_000,
		Dropped: 380_000, Status: map[int]uint64{202: 190_000}, PeakRSS: 110 << 20, RSS: []int64{100 << 20, 105 << 20}, RSSBounded: true}
	res := &Results{
		Generated: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Command:   "sluice bench --out benchmarks/RESULTS.md",
		Machine: Machine{CPUs: 2, CPUModel: "AMD EPYC", MemoryGiB: "23.5", Kernel: "6.18", GoVersion: "go1.26.8",
			OS: "linux/amd64", LoadBefore: "0.50 0.40 0.30", LoadAfter: "1.90 0.90 0.50"},
		Settings: Settings{Proto: loadgen.ProtoH2C, OverloadFactor: 3, Conns: 16, Streams: 32, Warmup: 500 * time.Millisecond,
			Duration: 5 * time.Second, Rounds: 2, WorkerProcs: 1, TradeShare: 0.2, InvalidShare: 0.01, SampleEvery: 8,
			H2LoadDuration: 1500 * time.Millisecond},
		H2Load:   "h2load nghttp2/1.52.0",
		WallTime: 4*time.Minute + 31*time.Second,
		Scenarios: []ScenarioResult{naiveSc, publish,
			{Name: ScenarioSweep, Title: "sweep", Description: "Open loop.", Sweep: sw},
			{Name: ScenarioOverload, Title: "overload", Description: "3×.", Overload: ov, EdgeOverload: edge}},
	}
	linkNaive(res)
	res.Targets = evaluateTargets(res)
	return res
}

// TestMarkdownGolden renders fixed figures and compares with
// testdata/RESULTS.golden.md (go test -update rewrites it).
func TestMarkdownGolden(t *testing.T) {
	got := fixtureResults().Markdown()
	path := filepath.Join("testdata", "RESULTS.golden.md")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("markdown differs from %s (rerun with -update if intended):\n%s", path, got)
	}
}

// TestFixtureFigures checks the figures the golden file shows: ratios per
// round, CPU per event by role, targets.
func TestFixtureFigures(t *testing.T) {
	res := fixtureResults()
	pub := findRow(res.Scenarios[1].Rows, "publish")
	if pub.Rounds != 2 || pub.ReqPerSec != 45_500 || pub.Baseline != "baseline-plain" || len(pub.RoundRatios) != 2 ||
		pub.RoundRatios[0] != 0.92 || pub.VsNaive != 45_500.0/12_000 {
		t.Fatalf("publish row %+v", pub)
	}
	// 4.8 s of gateway CPU for 455,000 events.
	if got := pub.CPU[RoleEdge]; got < 10.54 || got > 10.56 {
		t.Fatalf("edge CPU %.3f µs/event", got)
	}
	status := map[string]string{}
	for _, tg := range res.Targets {
		status[tg.Name] = tg.Status
	}
	// publish-minimal answers without a body: it is reported against
	// publish, never against the baseline, whose answer has one.
	if m := findRow(res.Scenarios[1].Rows, "publish-minimal"); m.Baseline != "publish" || m.RoundRatios[1] != 240.0/225 {
		t.Fatalf("publish-minimal row %+v", m)
	}
	want := map[string]string{"publish vs baseline": Met, "request vs baseline": NA, "cost, single events": Met,
		"overload goodput": Met, "overload latency": Met, "overload shedding": Met, "overload memory": Met, "allocations": NA}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("target %q: %s, want %s", k, status[k], v)
		}
	}
	if _, err := res.JSON(); err != nil {
		t.Fatal(err)
	}
}

// TestSweepSVG checks that the plot is well-formed XML with a line per
// percentile.
func TestSweepSVG(t *testing.T) {
	sw := fixtureResults().Scenarios[2].Sweep
	b := sw.SVG("latency <against> offered rate")
	dec := xml.NewDecoder(bytes.NewReader(b))
	lines := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("invalid SVG: %v\n%s", err, b)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 3 || !strings.Contains(string(b), "&lt;against&gt;") {
		t.Fatalf("%d polylines:\n%s", lines, b)
	}
}

func TestResultsJSON(t *testing.T) {
	b, err := fixtureResults().JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Scenarios) != 4 || back.Scenarios[1].Rows[1].Variant != "publish" {
		t.Fatalf("round trip: %+v", back.Scenarios)
	}
}

// TestProfiledBanner: a run with CPU profiles says so above its figures.
func TestProfiledBanner(t *testing.T) {
	res := fixtureResults()
	if bytes.Contains(res.Markdown(), []byte("Profiled run")) {
		t.Fatal("banner without --profile")
	}
	res.Settings.Profiled = true
	if !bytes.Contains(res.Markdown(), []byte("**Profiled run**")) {
		t.Fatal("no banner with --profile")
	}
}

// TestDurableTargets checks the durable scenario's targets and notes on
// fixed figures: ratios to core, to naive-durable and to the server's own
// store rate, the half-rate p99s, and CPU per event by process.
func TestDurableTargets(t *testing.T) {
	cpu := func(gw, wk, nats float64) map[string]float64 {
		return map[string]float64{"gateway": gw, "worker-quotes": wk, "nats": nats, "loadgen": 1}
	}
	runs := []Measurement{
		measurement("js-pub-600", "anchor", 0, 600_000, 1, 1, 5, map[string]float64{"nats": 3}),
		measurement("js-pub-600-dedupe", "anchor", 0, 500_000, 1, 1, 5, map[string]float64{"nats": 3}),
		measurement("js-pub-16k", "anchor", 0, 150_000, 1, 1, 5, map[string]float64{"nats": 3}),
		measurement("publish", "sluice", 0, 200_000, 1, 1, 10, cpu(2, 0.5, 0.5)),
		measurement("publish-durable", "sluice-durable", 0, 130_000, 1, 1, 12, cpu(2, 1.5, 2)),
		measurement("naive-durable", "naive-durable", 0, 50_000, 1, 2, 30, cpu(2, 2, 2)),
		measurement("batch-ndjson", "sluice", 0, 4_000, 100, 5, 50, cpu(1, 0.5, 0.5)),
		measurement("batch-durable", "sluice-durable", 0, 1_500, 100, 5, 60, cpu(1, 1, 1)),
	}
	def := scenarioDefs[ScenarioDurable]
	sr := ScenarioResult{Name: ScenarioDurable, Runs: runs, Rows: buildRows(def.order, def.refs, runs)}
	linkNaiveDurable(sr.Rows)
	// Three half-rate pairs: durable p99 against core's 1.5×, 3.0× (one
	// bad window, which would make the merged histograms' p99 2.8×) and
	// 1.2×: the target reads the median pair.
	var halves, cores []Measurement
	for r, hi := range []float64{6, 12, 5} {
		halves = append(halves, measurement("publish-durable-half", "sluice-durable", r, 65_000, 1, 1, hi, cpu(1, 1, 1)))
		cores = append(cores, measurement("publish-core-half", "sluice", r, 65_000, 1, 1, 4, cpu(1, 1, 1)))
		sr.Runs = append(sr.Runs, halves[r], cores[r])
	}
	sr.Rows = append(sr.Rows, aggregate(variant{name: "publish-durable-half", system: sysDurable}, halves),
		aggregate(variant{name: "publish-core-half", system: sysSluice}, cores))
	sr.Notes = scenarioNotes(ScenarioDurable, &sr)
	res := &Results{Scenarios: []ScenarioResult{sr}}
	linkNaive(res)
	got := map[string]Target{}
	for _, tg := range evaluateTargets(res) {
		got[tg.Name] = tg
	}
	for name, want := range map[string]struct{ status, figure string }{
		// 26,000 / 40,000 req/s.
		"durable publish vs core": {Met, "0.65×"},
		// 26,000 / 10,000.
		"durable publish vs naive-durable": {Met, "2.60×"},
		// 30,000 events/s / 100,000 msgs/s.
		"durable batches vs the server's store rate": {NotMet, "0.30× (30,000 events/s against 100,000 msgs/s"},
		// p99 of a 1-6 ms spread against a 1-4 ms one, the middle pair.
		"durable publish latency": {Met, "1.5×, the median of 3 alternated pairs (1.5, 3.0, 1.2; all pairs' p99"},
		// Gateway 2 s over 130,000 events against 2 s over 200,000: 15.38
		// against 10 µs; workers 11.54 against 2.5; NATS 15.38 against 2.5.
		"durable CPU per event": {Reported, "publish-durable: gateway +5.38, worker +9.04, NATS +12.88, system +27.31 µs"},
	} {
		tg := got[name]
		if tg.Status != want.status || !strings.Contains(tg.Figure, want.figure) {
			t.Errorf("target %q: %s %q, want %s with %q", name, tg.Status, tg.Figure, want.status, want.figure)
		}
	}
	if r := findRow(sr.Rows, "publish-durable"); r.Naive != "naive-durable" || r.VsNaive != 2.6 {
		t.Errorf("publish-durable against naive: %q %v", r.Naive, r.VsNaive)
	}
	notes := strings.Join(sr.Notes, "\n")
	for _, want := range []string{"publish-durable 26,000 events/s = 0.26×", "by -17%", "30,000 msgs/s, that is 3,840,000 events/s",
		"durable p50", "batch-durable against batch-ndjson: gateway"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// TestRejectedReasons: a row's 503s are followed by the gateway's reasons,
// summed over its rounds.
func TestRejectedReasons(t *testing.T) {
	var runs []Measurement
	for r := range 2 {
		m := measurement("publish-durable", "sluice-durable", r, 1000, 1, 1, 2, nil)
		m.Load.Status[503] = 6
		m.Rejected = map[string]float64{"shed": 5, "backpressure": 1}
		runs = append(runs, m)
	}
	var b bytes.Buffer
	writeRowDetails(&b, aggregate(variants["publish-durable"], runs))
	if want := "12 × 503 Service Unavailable; refused by the gateway: backpressure 2, shed 10"; !strings.Contains(b.String(), want) {
		t.Fatalf("got %q, want %q in it", b.String(), want)
	}
}
