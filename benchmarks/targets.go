package benchmarks

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/gateway/admit"
)

// The bounds of the performance targets in ../shared/DESIGN.md.
const (
	targetPublish     = 0.85
	targetRequest     = 0.55
	targetRequestBody = 0.85
	targetRequestP99  = 10.0 // ms at half the maximum
	targetBatch       = 15.0 // batch events/s over single-event req/s
	targetCostSingle  = 5.0  // µs per event beyond the baseline
	targetCostBatch   = 1.5  // µs per event in batches
	targetGoodput     = 0.90
	targetAdmittedP99 = 5.0 // times the unloaded p99, at 3× capacity
	// targetAdmittedP99At10 is the bound at 10× capacity and beyond.
	targetAdmittedP99At10 = 10.0
	targetShedLatencyMs   = 5.0
	// goodputCeiling: a goodput this far above the measured capacity means
	// the capacity probe fell short of what the run could pass (or, with
	// the workers the bottleneck, that the gateway admitted more than they
	// drain), so the ratio says nothing about shedding.
	goodputCeiling = 1.10
)

// evaluateTargets checks every target of DESIGN.md that the run has the
// figures for; the others are n/a.
func evaluateTargets(res *Results) []Target {
	sc := func(name string) *ScenarioResult {
		for i := range res.Scenarios {
			if res.Scenarios[i].Name == name {
				return &res.Scenarios[i]
			}
		}
		return nil
	}
	rows := func(name string) []Row {
		if s := sc(name); s != nil {
			return s.Rows
		}
		return nil
	}
	pub, req, bat := rows(ScenarioPublish), rows(ScenarioRequest), rows(ScenarioBatch)
	var ts []Target
	ts = append(ts, ratioTarget("publish vs baseline",
		fmt.Sprintf("≥ %.2f× the baseline's req/s (single-event async publish over %s)", targetPublish, res.Settings.Proto),
		findRow(pub, "publish"), findRow(pub, "baseline-plain"), targetPublish))
	ts = append(ts, ratioTarget("request vs baseline", fmt.Sprintf("≥ %.2f× the baseline's req/s", targetRequest),
		findRow(req, "request"), findRow(req, "baseline-plain"), targetRequest))
	ts = append(ts, ratioTarget("request vs baseline with body",
		fmt.Sprintf("≥ %.2f× a baseline answering with a body of the same size", targetRequestBody),
		findRow(req, "request"), findRow(req, "baseline-body"), targetRequestBody))
	ts = append(ts, requestP99Target(findRow(req, "request-half"), findRow(req, "baseline-body-half")))
	ts = append(ts, batchTarget(pub, bat))
	ts = append(ts, costTarget("cost, single events",
		fmt.Sprintf("gateway + worker + NATS add ≤ %.1f µs of CPU per event beyond the HTTP server's own", targetCostSingle),
		[]Row{findRow(pub, "publish")}, findRow(pub, "baseline-plain"), targetCostSingle))
	ts = append(ts, costTarget("cost, batches",
		fmt.Sprintf("≤ %.1f µs of CPU per event added in batches of 100", targetCostBatch),
		[]Row{findRow(bat, "batch-ndjson"), findRow(bat, "batch-msgpack")}, findRow(bat, "baseline-batch"), targetCostBatch))
	var durRuns []Measurement
	if s := sc(ScenarioDurable); s != nil {
		durRuns = s.Runs
	}
	ts = append(ts, durableTargets(rows(ScenarioDurable), durRuns)...)
	var ov, edge *Overload
	if s := sc(ScenarioOverload); s != nil {
		ov, edge = s.Overload, s.EdgeOverload
	}
	ts = append(ts, overloadTargets(ov, "", res.Settings.OverloadFactor)...)
	ts = append(ts, queueDelayTarget(ov))
	if edge != nil {
		ts = append(ts, overloadTargets(edge, ", gateway CPU the bottleneck", res.Settings.OverloadFactor)...)
	}
	var scale *Scale
	if s := sc(ScenarioScale); s != nil {
		scale = s.Scale
	}
	ts = append(ts, scaleTargets(scale)...)
	ts = append(ts, Target{Name: "allocations", Goal: "gateway ≤ 8 allocs per event, worker validate+enrich ≤ 4",
		Figure: "measured by the Go benchmarks (-benchmem), not by this suite: see benchmarks/README.md", Status: NA})
	return ts
}

func status(ok bool) string {
	if ok {
		return Met
	}
	return NotMet
}

func ratioTarget(name, goal string, row, base Row, bound float64) Target {
	t := Target{Name: name, Goal: goal, Status: NA, Figure: "not measured in this run"}
	if row.Rounds == 0 || base.EventsPerSec <= 0 {
		return t
	}
	r := row.EventsPerSec / base.EventsPerSec
	t.Figure = fmt.Sprintf("%.2f× (%s req/s against %s req/s of %s)", r, thousands(row.ReqPerSec),
		thousands(base.ReqPerSec), base.Variant)
	if row.Baseline == base.Variant && len(row.RoundRatios) > 1 {
		t.Figure += "; rounds " + joinRatios(row.RoundRatios)
	}
	t.Status = status(r >= bound)
	return t
}

func requestP99Target(half, floor Row) Target {
	t := Target{Name: "request latency", Goal: fmt.Sprintf("p99 ≤ %.0f ms at half the maximum request rate", targetRequestP99),
		Status: NA, Figure: "not measured in this run"}
	if half.Rounds == 0 || half.Latency.Count == 0 {
		return t
	}
	t.Figure = fmt.Sprintf("p99 %.2f ms at %s req/s offered (open loop)", half.Latency.P99, thousands(half.Offered))
	if floor.Rounds > 0 && floor.Latency.Count > 0 {
		t.Figure += fmt.Sprintf("; the body baseline at the same rate: p99 %.2f ms", floor.Latency.P99)
	}
	t.Status = status(half.Latency.P99 <= targetRequestP99)
	return t
}

func batchTarget(pub, bat []Row) Target {
	t := Target{Name: "batch", Goal: fmt.Sprintf("events/s in batches of 100 ≥ %.0f× the single-event req/s", targetBatch),
		Status: NA, Figure: "not measured in this run"}
	single := findRow(pub, "publish")
	if single.ReqPerSec <= 0 {
		return t
	}
	best, bestName := 0.0, ""
	for _, v := range []string{"batch-ndjson", "batch-msgpack"} {
		if r := findRow(bat, v); r.EventsPerSec > best {
			best, bestName = r.EventsPerSec, v
		}
	}
	if best <= 0 {
		return t
	}
	r := best / single.ReqPerSec
	t.Figure = fmt.Sprintf("%.1f× (%s: %s events/s; publish: %s req/s)", r, bestName, thousands(best), thousands(single.ReqPerSec))
	t.Status = status(r >= targetBatch)
	return t
}

func costTarget(name, goal string, rows []Row, base Row, bound float64) Target {
	t := Target{Name: name, Goal: goal, Status: NA, Figure: "not measured in this run"}
	if base.Rounds == 0 {
		return t
	}
	best, bestName, found := 0.0, "", false
	for _, r := range rows {
		if r.Rounds == 0 {
			continue
		}
		if d := r.SystemCPU - base.SystemCPU; !found || d < best {
			best, bestName, found = d, r.Variant, true
		}
	}
	if !found {
		return t
	}
	t.Figure = fmt.Sprintf("%.2f µs per event (%s, against %s)", best, bestName, base.Variant)
	t.Status = status(best <= bound)
	return t
}

// overloadTargets checks an overload run; suffix names the run in the
// target names ("" for the worker-bound run the targets are about).
// admittedP99Bound is DESIGN.md's bound on the admitted p99 against the
// unloaded p99: 5× at 3× capacity, 10× at 10× and beyond.
func admittedP99Bound(factor float64) float64 {
	if factor >= 10 {
		return targetAdmittedP99At10
	}
	return targetAdmittedP99
}

func overloadTargets(ov *Overload, suffix string, factor float64) []Target {
	bound := admittedP99Bound(factor)
	names := []Target{
		{Name: "overload goodput" + suffix, Goal: fmt.Sprintf("goodput ≥ %.0f%% of capacity at %g× capacity, open loop", targetGoodput*100, factor)},
		{Name: "overload latency" + suffix, Goal: fmt.Sprintf("p99 of admitted requests ≤ %.0f× the unloaded p99", bound)},
		{Name: "overload shedding" + suffix, Goal: fmt.Sprintf("every excess request answered 429/503 within %.0f ms", targetShedLatencyMs)},
		{Name: "overload memory" + suffix, Goal: "gateway RSS bounded"},
	}
	for i := range names {
		names[i].Status, names[i].Figure = NA, "not measured in this run"
	}
	if ov == nil {
		return names
	}
	names[0].Figure = fmt.Sprintf("%.0f%% (%s req/s of %s)", ov.GoodputRatio*100, thousands(ov.Goodput), thousands(ov.Capacity))
	names[0].Status = status(ov.GoodputRatio >= targetGoodput)
	if ov.GoodputRatio > goodputCeiling {
		names[0].Figure += "; above the capacity: the probe fell short of what this run could pass, so the ratio proves nothing"
		names[0].Status = NA
	}
	if ov.UnloadedP99 > 0 {
		r := ov.Admitted.P99 / ov.UnloadedP99
		names[1].Figure = fmt.Sprintf("%.1f× (p99 %.2f ms against %.2f ms unloaded)", r, ov.Admitted.P99, ov.UnloadedP99)
		names[1].Status = status(r <= bound)
	} else {
		names[1].Figure = fmt.Sprintf("p99 %.2f ms; no unloaded p99 in this run (run the sweep too)", ov.Admitted.P99)
	}
	names[2].Figure = fmt.Sprintf("%s shed, p99 %.2f ms, max %.2f ms; %s dropped by the generator, %s errors", thousands(float64(ov.Shed)),
		ov.ShedLatency.P99, ov.ShedLatency.Max, thousands(float64(ov.Dropped)), thousands(float64(ov.Errors)))
	if r := ov.Reference; r != nil {
		names[2].Figure += fmt.Sprintf(" (the trivial baseline server offered the same rate: p99 %.2f ms, max %.2f ms)", r.P99, r.Max)
	}
	names[2].Status = status(ov.Shed > 0 && ov.ShedLatency.Max <= targetShedLatencyMs && ov.Dropped == 0 && ov.Errors == 0)
	names[3].Figure = fmt.Sprintf("peak %s", mib(ov.PeakRSS))
	names[3].Status = status(ov.RSSBounded)
	return names
}

// queueDelayTarget is sluice's own check on the worker-bound overload: the
// 202 answers there do not wait for the workers, so the latency target
// cannot see the workers' queue; the events' delay from the gateway's
// receipt to their enriched message can, and the gateway bounds it at
// --shed-max-queue-delay (default).
func queueDelayTarget(ov *Overload) Target {
	t := Target{Name: "overload queue delay (sluice's own)",
		Goal: fmt.Sprintf("admitted events enriched within the gateway's default queue-delay bound (%s) of arrival, p99, nothing missing",
			admit.DefaultMaxQueueDelay), Status: NA, Figure: "not measured in this run"}
	if ov == nil || ov.E2E == nil || ov.E2E.Delay.Count == 0 {
		return t
	}
	d := ov.E2E.Delay
	t.Figure = fmt.Sprintf("p99 %.2f ms, max %.2f ms over %s observed events; %s missing", d.P99, d.Max,
		thousands(float64(d.Count)), thousands(float64(ov.E2E.Missing)))
	t.Status = status(d.P99 <= float64(admit.DefaultMaxQueueDelay.Milliseconds()) && ov.E2E.Missing == 0)
	return t
}

func joinRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, ", ")
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// thousands formats v rounded, with thin separators: 1234567 -> 1,234,567.
func thousands(v float64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
