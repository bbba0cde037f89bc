package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

// variant is one kind of run: a system and the requests sent to it.
type variant struct {
	name    string
	label   string
	system  string
	payload loadgen.PayloadOptions
	e2e     bool // match accepted ids with what comes out on NATS
	// backoff makes a closed-loop stream refused with 429 or 503 wait
	// before its next request (loadgen.DefaultBackoff), as a client that
	// honours backpressure does. The batch rows, whose gateway sheds by
	// queue depth, have it: resent at once, 24,000 refusals a second took
	// the CPU of the stores they waited for.
	backoff bool
	// quotesOnly sends no trades, whatever Options.TradeShare says: the
	// overload's slowed pipeline only slows its quotes group.
	quotesOnly bool
	// validOnly sends no invalid events, whatever Options.InvalidShare
	// says: the scale scenario expects every event in the enriched stream.
	validOnly bool
	// anchor, when set, makes the run no HTTP load at all but what the
	// NATS server stores on its own in this shape (see anchor.go).
	anchor *anchorShape
}

// The request shapes.
var (
	singleJSON = loadgen.PayloadOptions{Format: loadgen.FormatJSON}
	singleSync = loadgen.PayloadOptions{Format: loadgen.FormatJSON, Prefer: true}
	singleMin  = loadgen.PayloadOptions{Format: loadgen.FormatJSON, Minimal: true}
	batchNDJ   = loadgen.PayloadOptions{Format: loadgen.FormatNDJSON, Batch: 100}
	batchMsgp  = loadgen.PayloadOptions{Format: loadgen.FormatMsgpack, Batch: 100}
)

// variants are every run the scenarios are made of.
var variants = map[string]variant{
	"baseline-plain":    {label: "baseline: read body, 202", system: sysBaseline + "plain", payload: singleJSON},
	"baseline-buffered": {label: "baseline + the gateway's socket setup (read buffer, coalesced writes)", system: sysBaseline + "buffered", payload: singleJSON},
	"baseline-body":     {label: "baseline: read body, 200 + 700 B", system: sysBaseline + "body", payload: singleSync},
	"baseline-batch":    {label: "baseline: 100-event NDJSON body, 202", system: sysBaseline + "plain", payload: batchNDJ},
	"naive-publish":     {label: "naive: 1 event, 202", system: sysNaive, payload: singleJSON, e2e: true},
	"naive-request":     {label: "naive: 1 event, Prefer", system: sysNaive, payload: singleSync},
	"naive-batch":       {label: "naive: 100 events NDJSON, 202", system: sysNaive, payload: batchNDJ, e2e: true},
	"publish":           {label: "sluice: 1 event, 202", system: sysSluice, payload: singleJSON, e2e: true},
	"publish-minimal":   {label: "sluice: 1 event, return=minimal, 202 without body", system: sysSluice, payload: singleMin},
	"publish-traced":    {label: "sluice, tracing on, 1% of requests traced: 1 event, 202", system: sysTraced, payload: singleJSON, e2e: true},
	"request":           {label: "sluice: 1 event, Prefer", system: sysSluice, payload: singleSync},
	"batch-ndjson":      {label: "sluice: 100 events NDJSON, 202", system: sysSluice, payload: batchNDJ, e2e: true, backoff: true},
	"batch-msgpack":     {label: "sluice: 100 events msgpack, 202", system: sysSluice, payload: batchMsgp, e2e: true, backoff: true},
	"slow-publish":      {label: "slowed quotes worker: 1 quote, 202", system: sysSlow, payload: singleJSON, e2e: true, quotesOnly: true},
	"slow-request":      {label: "slowed quotes worker: 1 quote, Prefer", system: sysSlow, payload: singleSync, quotesOnly: true},
	"publish-durable":   {label: "sluice durable: 1 event, 202 once stored", system: sysDurable, payload: singleJSON, e2e: true},
	"request-durable":   {label: "sluice durable: 1 event, Prefer", system: sysDurable, payload: singleSync},
	"batch-durable":     {label: "sluice durable: 100 events NDJSON, 202 once stored", system: sysDurable, payload: batchNDJ, e2e: true, backoff: true},
	"naive-durable":     {label: "naive durable: 1 event, one JetStream message per request, 202 once stored", system: sysNaiveDurable, payload: singleJSON, e2e: true},
	"js-pub-600":        {label: "NATS alone: JetStream async publish, 600 B messages (rate: msgs/s)", system: sysAnchor, anchor: &anchorShape{size: 600}},
	"js-pub-600-dedupe": {label: "NATS alone: the same with a Nats-Msg-Id each (dedupe on)", system: sysAnchor, anchor: &anchorShape{size: 600, dedupe: true}},
	"js-pub-16k":        {label: "NATS alone: JetStream async publish, 16 KB messages (a batch frame)", system: sysAnchor, anchor: &anchorShape{size: 16 << 10}},
}

func init() {
	for name, v := range variants {
		v.name = name
		variants[name] = v
	}
}

// naiveOf maps a sluice variant to the naive variant of the same shape.
var naiveOf = map[string]string{
	"publish": "naive-publish", "request": "naive-request",
	"batch-ndjson": "naive-batch", "batch-msgpack": "naive-batch",
}

// scenarioDef is a scenario made of variants run in rotation: each round
// runs them all, every other round in reverse order (ABBA), so that a drift
// of the machine during the scenario weighs on every variant alike.
type scenarioDef struct {
	title       string
	description string
	order       []string
	// refs maps a variant to the variant it is reported against.
	refs map[string]string
	// rounds overrides Options.Rounds when positive.
	rounds int
}

var scenarioDefs = map[string]scenarioDef{
	ScenarioBaseline: {
		title: "baseline: the HTTP layer alone",
		description: "A trivial Go server that reads the body and answers, over the same protocol and connection shape " +
			"as every other scenario (closed loop), one round. Its rate and CPU per request are the limit Go's HTTP layer sets on " +
			"this machine; `buffered` shapes connections as the gateway does (a 16 KiB read buffer, coalesced writes), `body` answers " +
			"200 with an enriched event's 700 bytes (the reference for request-reply).",
		order: []string{"baseline-plain", "baseline-buffered", "baseline-body"},
		refs:  map[string]string{"baseline-buffered": "baseline-plain", "baseline-body": "baseline-plain"},
		// One round: every other scenario measures its own baselines,
		// alternating with what it compares, for its ratios.
		rounds: 1,
	},
	ScenarioNaive: {
		title: "naive: a conventional gateway and worker",
		description: "encoding/json, one NATS message per request (nc.Publish, or nc.Request when the caller waits), " +
			"no micro-batching, a JSON envelope; the worker validates and enriches with sluice's own rules. " +
			"One round, each shape next to its baseline.",
		order: []string{"baseline-plain", "naive-publish", "baseline-body", "naive-request", "baseline-batch", "naive-batch"},
		refs: map[string]string{"naive-publish": "baseline-plain", "naive-request": "baseline-body",
			"naive-batch": "baseline-batch"},
		rounds: 1,
	},
	ScenarioPublish: {
		title: "publish: one event per request, fire and forget",
		description: "Single quotes and trades (JSON unless --format says otherwise), answered 202 once handed to NATS, processed end to end by the " +
			"workers (closed loop). Compared with the plain baseline (the target's reference), which answers 202 " +
			"with a body of the gateway's size and shape, and the buffered one, whose connections get the gateway's " +
			"socket setup (read buffer, coalesced writes): what the same tricks give a trivial server. `publish-minimal` sends " +
			"Prefer: return=minimal and gets 202 without a body, which Go's server writes over HTTP/2 in one " +
			"hand-off to the connection instead of two; it is reported against `publish`, as what a publisher that " +
			"does not read the ids saves (its events are processed alike, and the end-to-end observer stays " +
			"subscribed, but without ids in the answer the generator cannot match them end to end).",
		order: []string{"baseline-plain", "publish", "baseline-buffered", "publish-minimal", "publish-traced"},
		// publish-minimal gets a smaller answer than the baseline's, so it is
		// reported against publish: what return=minimal saves.
		// publish-traced is reported against publish: what tracing at 1%
		// sampling costs (target: at least 0.95x).
		refs: map[string]string{"publish": "baseline-plain", "baseline-buffered": "baseline-plain", "publish-minimal": "publish", "publish-traced": "publish"},
	},
	ScenarioRequest: {
		title: "request: one event per request, waiting for the result",
		description: "Prefer: return=representation: the gateway answers 200 with the enriched event (422 for the " +
			"invalid share) once the worker's reply is back (closed loop), then an open-loop run at half that rate " +
			"for the latency target, and the body baseline offered the same rate open loop: the p99 any server " +
			"answering at that rate gets on this machine.",
		order: []string{"baseline-body", "request", "baseline-plain"},
		refs:  map[string]string{"request": "baseline-body", "baseline-plain": "baseline-body"},
	},
	ScenarioDurable: {
		title: "durable: JetStream delivery, against core and against what NATS stores alone",
		description: "The durable pipeline (gateway and workers with --delivery durable, under the prefix `durable`, streams " +
			"R1 on file storage) next to the core one, shape for shape, and the naive pipeline in durable mode (one JetStream " +
			"message per request, stored before its 202; its worker stores every enriched event in the same kind of enriched " +
			"stream, many messages in flight). The anchors are what the same NATS server stores on its own in the shapes of " +
			"`nats bench js pub` (one client, asynchronous publishes in batches of 100, each batch's acks awaited), written " +
			"with nats.go's jetstream package in the suite's process: their rate is stored messages per second, their latency " +
			"a batch of 100's, their CPU per stored message. Then durable publish open loop at half its maximum, and core " +
			"publish offered the same rate: the latency target, taken as the median of at least three such pairs, " +
			"alternating which goes first, each run starting once the durable workers have emptied the ingest stream. The batch rows measure a client that honours backpressure: " +
			"a stream refused with 429 or 503 waits 1 ms, doubling up to 100 ms or Retry-After, before its next request.",
		order: []string{"js-pub-600", "js-pub-600-dedupe", "js-pub-16k", "publish", "publish-durable", "naive-durable",
			"request", "request-durable", "batch-ndjson", "batch-durable"},
		refs: map[string]string{"js-pub-600-dedupe": "js-pub-600", "publish-durable": "publish",
			"request-durable": "request", "batch-durable": "batch-ndjson"},
	},
	ScenarioBatch: {
		title: "batch: 100 events per request",
		description: "NDJSON and MessagePack bodies of 100 events, answered 202 (closed loop); the baseline reads the " +
			"same NDJSON bodies. The batch rows measure a client that honours backpressure: a stream refused with 429 or 503 " +
			"waits 1 ms, doubling up to 100 ms or Retry-After, before its next request.",
		order: []string{"baseline-batch", "batch-ndjson", "batch-msgpack"},
		refs:  map[string]string{"batch-ndjson": "baseline-batch", "batch-msgpack": "baseline-batch"},
	},
}

// scenario runs one scenario.
func (s *suite) scenario(ctx context.Context, name string) (*ScenarioResult, error) {
	switch name {
	case ScenarioSweep:
		return s.sweep(ctx)
	case ScenarioOverload:
		return s.overload(ctx)
	case ScenarioFanout:
		return s.fanout(ctx)
	case ScenarioSlowConsumer:
		return s.slowConsumer(ctx)
	case ScenarioScale:
		return s.scale(ctx)
	}
	def := scenarioDefs[name]
	sr := &ScenarioResult{Name: name, Title: def.title, Description: def.description}
	runs, err := s.rotate(ctx, name, def)
	sr.Runs = runs
	sr.Rows = buildRows(def.order, def.refs, runs)
	for i := range sr.Rows {
		sr.Rows[i].H2Load = s.h2loads[sr.Rows[i].Variant]
	}
	if err != nil {
		return sr, err
	}
	switch name {
	case ScenarioPublish:
		s.capacity = findRow(sr.Rows, "publish").ReqPerSec
	case ScenarioRequest:
		err = s.halfRate(ctx, sr)
	case ScenarioDurable:
		linkNaiveDurable(sr.Rows)
		err = s.durableHalf(ctx, sr)
	}
	sr.Notes = scenarioNotes(name, sr)
	if name == ScenarioEdge {
		sr.Notes = edgeNotes(sr, s.skipped[name])
	}
	return sr, err
}

// rotate runs the scenario's variants round after round.
func (s *suite) rotate(ctx context.Context, name string, def scenarioDef) ([]Measurement, error) {
	rounds := orDefault(def.rounds, s.o.Rounds)
	var runs []Measurement
	for r := range rounds {
		order := slices.Clone(def.order)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, vname := range order {
			spec := runSpec{v: variants[vname], round: r, mode: loadgen.Closed}
			var prof *profiler
			if s.o.ProfileDir != "" && r == 0 && (spec.v.system == sysSluice || spec.v.system == sysSluiceFast || spec.v.system == sysSluiceStd) {
				prof = s.profiler(vname)
				if spec.v.system != sysSluice {
					prof.gateway = spec.v.system + "-gateway" // startEdgeGateway's child
				}
				spec.onWindow = prof.hook
			}
			run, err := s.measure(ctx, spec)
			if errors.Is(err, errNoNginx) {
				if r == 0 {
					if s.skipped == nil {
						s.skipped = map[string][]string{}
					}
					s.log.Warn("edge scenario", "skipped", err)
					s.skipped[name] = append(s.skipped[name], vname+": "+err.Error())
				}
				continue
			}
			if prof != nil {
				if perr := prof.wait(); perr != nil {
					s.log.Warn("profile", "err", perr)
				}
			}
			if err != nil {
				return runs, err
			}
			runs = append(runs, *run)
			if r == 0 && name != ScenarioNaive && spec.v.anchor == nil {
				s.crossCheck(ctx, spec.v)
			}
		}
	}
	return runs, nil
}

// halfRate runs request-reply open loop at half its measured maximum: the
// target's p99 is taken there. The body baseline is then offered the same
// rate, open loop too: the p99 this machine and generator give any server
// answering at that rate, the floor under the target.
func (s *suite) halfRate(ctx context.Context, sr *ScenarioResult) error {
	max := findRow(sr.Rows, "request").ReqPerSec
	if max <= 0 {
		return nil
	}
	v := variants["request"]
	v.name = "request-half"
	v.label = "sluice: 1 event, Prefer, open loop at 50%"
	run, err := s.measure(ctx, runSpec{v: v, mode: loadgen.Open, rate: max / 2, label: "request @ 50%"})
	if err != nil {
		return err
	}
	sr.Runs = append(sr.Runs, *run)
	sr.Rows = append(sr.Rows, aggregate(v, []Measurement{*run}))
	ref := variants["baseline-body"]
	ref.name = "baseline-body-half"
	ref.label = "baseline: read body, 200 + 700 B, open loop at the same rate"
	run, err = s.measure(ctx, runSpec{v: ref, mode: loadgen.Open, rate: max / 2, label: "baseline-body @ same rate"})
	if err != nil {
		return err
	}
	sr.Runs = append(sr.Runs, *run)
	sr.Rows = append(sr.Rows, aggregate(ref, []Measurement{*run}))
	return nil
}

// durableHalf runs durable publish open loop at half its measured maximum,
// then core publish offered the same rate: the durable latency target
// compares their p99s. A tail is what one window measures worst, so the
// pair is measured halfPairs times, alternating which goes first, each run
// starting once the durable pipeline has processed what the runs before it
// admitted (waitDurableIdle): a backlog left by the closed-loop rows would
// otherwise share the cores with whichever run came next. The target takes
// the median of the pairs' ratios.
func (s *suite) durableHalf(ctx context.Context, sr *ScenarioResult) error {
	max := findRow(sr.Rows, "publish-durable").ReqPerSec
	if max <= 0 {
		return nil
	}
	type half struct{ base, name, label string }
	pair := []half{
		{"publish-durable", "publish-durable-half", "sluice durable: 1 event, 202, open loop at 50% of its maximum"},
		{"publish", "publish-core-half", "sluice core: 1 event, 202, open loop at the same rate"},
	}
	byName := map[string][]Measurement{}
	for r := range s.halfPairs() {
		order := slices.Clone(pair)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, h := range order {
			s.waitDurableIdle(ctx)
			v := variants[h.base]
			v.name, v.label = h.name, h.label
			run, err := s.measure(ctx, runSpec{v: v, round: r, mode: loadgen.Open, rate: max / 2,
				label: fmt.Sprintf("%s @ durable 50%% #%d", h.base, r+1)})
			if err != nil {
				return err
			}
			sr.Runs = append(sr.Runs, *run)
			byName[h.name] = append(byName[h.name], *run)
		}
	}
	for _, h := range pair {
		v := variants[h.base]
		v.name, v.label = h.name, h.label
		sr.Rows = append(sr.Rows, aggregate(v, byName[h.name]))
	}
	return nil
}

// halfPairs is how many durable and core half-rate pairs durableHalf
// measures: the suite's rounds, at least 3 (1 with --quick).
func (s *suite) halfPairs() int {
	if s.o.Quick {
		return 1
	}
	return max(s.o.Rounds, 3)
}

// linkNaiveDurable reports durable publish against the naive pipeline's
// durable mode, measured in the same scenario.
func linkNaiveDurable(rows []Row) {
	n := findRow(rows, "naive-durable")
	for i := range rows {
		if rows[i].Variant == "publish-durable" && n.EventsPerSec > 0 {
			rows[i].Naive, rows[i].VsNaive = n.Variant, rows[i].EventsPerSec/n.EventsPerSec
		}
	}
}

// buildRows aggregates runs per variant, in order, with their ratios.
func buildRows(order []string, refs map[string]string, runs []Measurement) []Row {
	byVariant := map[string][]Measurement{}
	for _, r := range runs {
		byVariant[r.Variant] = append(byVariant[r.Variant], r)
	}
	var rows []Row
	for _, name := range order {
		if len(byVariant[name]) == 0 {
			continue
		}
		rows = append(rows, aggregate(variants[name], byVariant[name]))
	}
	for i := range rows {
		ref, ok := refs[rows[i].Variant]
		if !ok {
			continue
		}
		base := findRow(rows, ref)
		if base.EventsPerSec <= 0 {
			continue
		}
		rows[i].Baseline = ref
		rows[i].VsBaseline = rows[i].EventsPerSec / base.EventsPerSec
		rows[i].RoundRatios = roundRatios(byVariant[rows[i].Variant], byVariant[ref])
	}
	return rows
}

func roundRatios(runs, refs []Measurement) []float64 {
	var out []float64
	for _, r := range runs {
		for _, b := range refs {
			if b.Round == r.Round && b.Load.EventsPerSec > 0 {
				out = append(out, r.Load.EventsPerSec/b.Load.EventsPerSec)
			}
		}
	}
	return out
}

// findRow returns the row of variant, or a zero row.
func findRow(rows []Row, variant string) Row {
	for _, r := range rows {
		if r.Variant == variant {
			return r
		}
	}
	return Row{}
}

// aggregate sums the runs of one variant into a row.
func aggregate(v variant, runs []Measurement) Row {
	row := Row{Variant: v.name, Label: v.label, Kind: kindOf(v.system), Rounds: len(runs),
		CPU: map[Role]float64{}, Status: map[int]uint64{}}
	var answered, events uint64
	var secs, offered float64
	cpu := map[Role]float64{}
	hist := loadgen.NewHistogram()
	for i := range runs {
		l := runs[i].Load
		answered += l.Answered
		events += l.Events
		secs += l.Duration.Seconds()
		offered += l.OfferedPerSec
		row.Errors += l.Errors
		row.ErrorKinds = loadgen.AddCounts(row.ErrorKinds, l.ErrorKinds)
		row.Dropped += l.Dropped
		row.Status = loadgen.AddCounts(row.Status, l.Status)
		for reason, n := range runs[i].Rejected {
			if row.Rejected == nil {
				row.Rejected = map[string]float64{}
			}
			row.Rejected[reason] += n
		}
		for _, p := range runs[i].CPU {
			cpu[p.Role] += p.Seconds
		}
		if l.E2E != nil {
			if row.E2E == nil {
				row.E2E = &loadgen.E2E{}
			}
			row.E2E.Add(l.E2E)
		}
		if l.Hist != nil {
			hist.Merge(l.Hist)
		}
	}
	row.Latency = loadgen.Summarize(hist)
	if secs > 0 {
		row.ReqPerSec, row.EventsPerSec = float64(answered)/secs, float64(events)/secs
	}
	row.Offered = offered / float64(len(runs))
	for role, sec := range cpu {
		if events > 0 {
			row.CPU[role] = sec * 1e6 / float64(events)
		}
		if role != RoleLoadgen {
			row.SystemCPU += row.CPU[role]
		}
	}
	return row
}

func kindOf(system string) string {
	switch system {
	case sysSluice, sysSlow, sysSluiceFast, sysSluiceStd, sysDurable, sysScale:
		return KindSluice
	case sysNaive, sysNaiveDurable:
		return KindNaive
	case sysAnchor:
		return KindAnchor
	}
	return KindBaseline
}

// linkNaive fills the naive ratio of every sluice row whose naive
// counterpart ran in the same invocation.
func linkNaive(res *Results) {
	var naiveRows []Row
	for _, sc := range res.Scenarios {
		if sc.Name == ScenarioNaive {
			naiveRows = sc.Rows
		}
	}
	for i := range res.Scenarios {
		for j := range res.Scenarios[i].Rows {
			row := &res.Scenarios[i].Rows[j]
			n := findRow(naiveRows, naiveOf[row.Variant])
			if n.EventsPerSec > 0 && row.Naive == "" {
				row.Naive, row.VsNaive = n.Variant, row.EventsPerSec/n.EventsPerSec
			}
		}
	}
}

// scenarioNotes are the derived figures printed under a scenario's table.
func scenarioNotes(name string, sr *ScenarioResult) []string {
	var notes []string
	ratio := func(a, b string) (float64, bool) {
		ra, rb := findRow(sr.Rows, a), findRow(sr.Rows, b)
		if ra.EventsPerSec <= 0 || rb.EventsPerSec <= 0 {
			return 0, false
		}
		return ra.EventsPerSec / rb.EventsPerSec, true
	}
	added := func(sut, base string) (float64, bool) {
		a, b := findRow(sr.Rows, sut), findRow(sr.Rows, base)
		if a.Rounds == 0 || b.Rounds == 0 {
			return 0, false
		}
		return a.SystemCPU - b.SystemCPU, true
	}
	switch name {
	case ScenarioPublish:
		if r, ok := ratio("publish", "baseline-buffered"); ok {
			notes = append(notes, fmt.Sprintf("publish ÷ baseline-buffered (the same socket setup as the gateway: read buffer, coalesced writes): %.2f×", r))
		}
		if d, ok := added("publish", "baseline-plain"); ok {
			notes = append(notes, fmt.Sprintf("CPU added by gateway + workers + NATS beyond the plain baseline server: %.2f µs per event", d))
		}
		if r, ok := ratio("publish-traced", "publish"); ok {
			notes = append(notes, fmt.Sprintf("tracing on (spans exported over OTLP/HTTP to a sink in the suite), %g of requests traced: publish-traced ÷ publish %.2f× (target ≥ 0.95×)", TraceSample, r))
			if d, ok := added("publish-traced", "publish"); ok {
				notes = append(notes, fmt.Sprintf("tracing at %g changes the system's CPU by %+.2f µs per event", TraceSample, d))
			}
		}
		if d, ok := added("publish-minimal", "publish"); ok {
			notes = append(notes, fmt.Sprintf("Prefer: return=minimal (202 without the ids) changes the system's CPU by %+.2f µs per event", d))
		}
	case ScenarioRequest:
		if r, ok := ratio("request", "baseline-plain"); ok {
			notes = append(notes, fmt.Sprintf("request ÷ baseline-plain: %.2f×", r))
		}
		if h := findRow(sr.Rows, "request-half"); h.Rounds > 0 {
			notes = append(notes, fmt.Sprintf("at half the maximum (%s req/s offered, open loop): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms",
				thousands(h.Offered), h.Latency.P50, h.Latency.P99, h.Latency.P999))
		}
		for _, v := range []string{"request", "request-half"} {
			if m := lastRun(sr.Runs, v); m != nil && len(m.Stages) > 0 {
				notes = append(notes, fmt.Sprintf("where the time of %s went (its last run; the stage histograms of gateway and workers over the window): %s",
					v, formatStages(m.Load.Latency.P50, m.Load.Latency.P99, m.Stages)))
			}
		}
		if b := findRow(sr.Rows, "baseline-body-half"); b.Rounds > 0 {
			notes = append(notes, fmt.Sprintf("the body baseline offered the same rate, open loop: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms (the floor any server answering at that rate gets on this machine)",
				b.Latency.P50, b.Latency.P99, b.Latency.P999))
		}
	case ScenarioDurable:
		notes = durableNotes(sr)
	case ScenarioBatch:
		for _, v := range []string{"batch-ndjson", "batch-msgpack"} {
			if d, ok := added(v, "baseline-batch"); ok {
				notes = append(notes, fmt.Sprintf("%s: CPU added beyond the baseline reading the same bodies: %.2f µs per event", v, d))
			}
		}
	}
	return notes
}

// lastRun returns the last measurement of variant v in runs, or nil.
func lastRun(runs []Measurement, v string) *Measurement {
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Variant == v {
			return &runs[i]
		}
	}
	return nil
}
