package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// The bounds of issue #11's durable targets.
const (
	targetDurablePublish = 0.6 // durable publish req/s over core publish's
	targetDurableNaive   = 2.0 // durable publish req/s over naive-durable's
	targetDurableBatch   = 0.5 // durable batch events/s over the server's dedupe-on store rate
	targetDurableP99     = 2.0 // durable publish p99 at half its maximum over core's at the same rate
)

// durablePairs are the durable rows and the core rows of the same shape.
var durablePairs = [][2]string{{"publish-durable", "publish"}, {"request-durable", "request"}, {"batch-durable", "batch-ndjson"}}

// durableNotes are the durable scenario's derived figures: each durable
// row against what the server stores alone, the 16 KB anchor in events,
// the CPU durability adds per process, and the half-rate latencies.
func durableNotes(sr *ScenarioResult) []string {
	var notes []string
	dedupe, plain, big := findRow(sr.Rows, "js-pub-600-dedupe"), findRow(sr.Rows, "js-pub-600"), findRow(sr.Rows, "js-pub-16k")
	if dedupe.EventsPerSec > 0 {
		var parts []string
		for _, v := range []string{"publish-durable", "request-durable", "batch-durable", "naive-durable"} {
			if r := findRow(sr.Rows, v); r.EventsPerSec > 0 {
				parts = append(parts, fmt.Sprintf("%s %s events/s = %.2f×", v, thousands(r.EventsPerSec), r.EventsPerSec/dedupe.EventsPerSec))
			}
		}
		if len(parts) > 0 {
			notes = append(notes, fmt.Sprintf("against what the server stores alone with dedupe on (js-pub-600-dedupe, %s msgs/s; every durable "+
				"event is one enriched message with a Nats-Msg-Id, so 1× is the ceiling of a one-message-per-event enriched "+
				"stream on this server): %s", thousands(dedupe.EventsPerSec), strings.Join(parts, ", ")))
		}
	}
	if plain.EventsPerSec > 0 && dedupe.EventsPerSec > 0 {
		notes = append(notes, fmt.Sprintf("dedupe (a Nats-Msg-Id per message) changes the server's store rate by %+.0f%% (%s against %s msgs/s)",
			(dedupe.EventsPerSec/plain.EventsPerSec-1)*100, thousands(dedupe.EventsPerSec), thousands(plain.EventsPerSec)))
	}
	if big.EventsPerSec > 0 {
		notes = append(notes, fmt.Sprintf("16 KB messages, each the size of a full batch frame of %d events: %s msgs/s, that is %s events/s of ingest: "+
			"the ingest stream is not the limit, the enriched stream (one message per event) is", frameEvents,
			thousands(big.EventsPerSec), thousands(big.EventsPerSec*frameEvents)))
	}
	for _, p := range durablePairs {
		if cost, ok := durableCPU(sr.Rows, p[0], p[1]); ok {
			notes = append(notes, fmt.Sprintf("CPU per event added by durability, %s against %s: %s", p[0], p[1], cost))
		}
	}
	h, c := findRow(sr.Rows, "publish-durable-half"), findRow(sr.Rows, "publish-core-half")
	if h.Rounds > 0 && c.Rounds > 0 {
		notes = append(notes, fmt.Sprintf("open loop at half the durable maximum (%s req/s offered): durable p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms; "+
			"core at the same rate p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms", thousands(h.Offered), h.Latency.P50, h.Latency.P99, h.Latency.P999,
			c.Latency.P50, c.Latency.P99, c.Latency.P999))
	}
	for _, v := range []string{"publish-durable-half", "publish-core-half"} {
		if m := lastRun(sr.Runs, v); m != nil && len(m.Stages) > 0 {
			notes = append(notes, fmt.Sprintf("where the time of %s went (the stage histograms of gateway and workers over its window): %s",
				v, formatStages(m.Load.Latency.P50, m.Load.Latency.P99, m.Stages)))
		}
	}
	return notes
}

// durableCPU formats the CPU per event row dur costs beyond row core, by
// process role.
func durableCPU(rows []Row, dur, core string) (string, bool) {
	d, c := findRow(rows, dur), findRow(rows, core)
	if d.Rounds == 0 || c.Rounds == 0 {
		return "", false
	}
	return fmt.Sprintf("gateway %+.2f, worker %+.2f, NATS %+.2f, system %+.2f µs (%.2f against %.2f)",
		d.CPU[RoleEdge]-c.CPU[RoleEdge], d.CPU[RoleWorker]-c.CPU[RoleWorker], d.CPU[RoleNATS]-c.CPU[RoleNATS],
		d.SystemCPU-c.SystemCPU, d.SystemCPU, c.SystemCPU), true
}

// durableTargets checks issue #11's durable targets against the durable
// scenario's rows and runs.
func durableTargets(rows []Row, runs []Measurement) []Target {
	ts := []Target{
		ratioTarget("durable publish vs core", fmt.Sprintf("durable single-event publish ≥ %.1f× core publish's req/s", targetDurablePublish),
			findRow(rows, "publish-durable"), findRow(rows, "publish"), targetDurablePublish),
		ratioTarget("durable publish vs naive-durable", fmt.Sprintf("≥ %.0f× the conventional design's req/s (one JetStream message per request)", targetDurableNaive),
			findRow(rows, "publish-durable"), findRow(rows, "naive-durable"), targetDurableNaive),
	}
	bt := Target{Name: "durable batches vs the server's store rate",
		Goal:   fmt.Sprintf("events/s in durable batches of 100 ≥ %.1f× what the server stores alone with dedupe on (600 B messages)", targetDurableBatch),
		Status: NA, Figure: "not measured in this run"}
	if b, a := findRow(rows, "batch-durable"), findRow(rows, "js-pub-600-dedupe"); b.Rounds > 0 && a.EventsPerSec > 0 {
		r := b.EventsPerSec / a.EventsPerSec
		bt.Figure = fmt.Sprintf("%.2f× (%s events/s against %s msgs/s stored by js-pub-600-dedupe)", r, thousands(b.EventsPerSec), thousands(a.EventsPerSec))
		bt.Status = status(r >= targetDurableBatch)
	}
	ts = append(ts, bt)
	lat := Target{Name: "durable publish latency", Goal: fmt.Sprintf("p99 of durable publish at half its maximum ≤ %.0f× core publish's at the same rate", targetDurableP99),
		Status: NA, Figure: "not measured in this run"}
	if ratios := halfRatios(runs); len(ratios) > 0 {
		h, c := findRow(rows, "publish-durable-half"), findRow(rows, "publish-core-half")
		r := median(ratios)
		each := make([]string, len(ratios))
		for i, x := range ratios {
			each[i] = fmt.Sprintf("%.1f", x)
		}
		lat.Figure = fmt.Sprintf("%.1f×, the median of %d alternated pairs (%s; all pairs' p99 %.2f ms against %.2f ms at %s req/s offered)",
			r, len(ratios), strings.Join(each, ", "), h.Latency.P99, c.Latency.P99, thousands(h.Offered))
		lat.Status = status(r <= targetDurableP99)
	}
	cpu := Target{Name: "durable CPU per event", Goal: "CPU per event added by durability, per process (gateway, worker, NATS)",
		Status: NA, Figure: "not measured in this run"}
	var parts []string
	for _, p := range durablePairs {
		if cost, ok := durableCPU(rows, p[0], p[1]); ok {
			parts = append(parts, p[0]+": "+cost)
		}
	}
	if len(parts) > 0 {
		cpu.Figure, cpu.Status = strings.Join(parts, "; "), Reported
	}
	return append(ts, lat, cpu)
}

// halfRatios are the durable p99 over the core p99 of each half-rate pair
// (the runs of one round), in round order.
func halfRatios(runs []Measurement) []float64 {
	type pair struct{ d, c float64 }
	byRound := map[int]*pair{}
	var rounds []int
	for _, m := range runs {
		if m.Variant != "publish-durable-half" && m.Variant != "publish-core-half" {
			continue
		}
		p := byRound[m.Round]
		if p == nil {
			p = &pair{}
			byRound[m.Round] = p
			rounds = append(rounds, m.Round)
		}
		if m.Variant == "publish-durable-half" {
			p.d = m.Load.Latency.P99
		} else {
			p.c = m.Load.Latency.P99
		}
	}
	slices.Sort(rounds)
	var out []float64
	for _, r := range rounds {
		if p := byRound[r]; p.d > 0 && p.c > 0 {
			out = append(out, p.d/p.c)
		}
	}
	return out
}

// waitDurableIdle waits, when the durable pipeline runs, until its ingest
// stream is empty: the workers have processed and acknowledged every batch
// the runs before admitted (the stream is a work queue). It gives up after
// durableIdleMax (2 s with --quick) with a warning, and costs one stream
// info request every 50 ms.
func (s *suite) waitDurableIdle(ctx context.Context) {
	if s.systems[sysDurable] == nil || s.nats == nil {
		return
	}
	wait := durableIdleMax
	if s.o.Quick {
		wait = 2 * time.Second
	}
	if err := s.untilDurableIdle(ctx, wait); err != nil {
		s.log.Warn("the durable pipeline did not go idle", "err", err)
	}
}

func (s *suite) untilDurableIdle(ctx context.Context, wait time.Duration) error {
	nc, err := nats.Connect(s.nats.addr, nats.Name("bench-idle-wait"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	subj, err := schemas.NewSubjects(durablePrefix)
	if err != nil {
		return err
	}
	name := bus.IngestStream(subj)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var left uint64
	for {
		st, err := js.Stream(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return nil // nothing durable was admitted yet
		case err == nil:
			if left = st.CachedInfo().State.Msgs; left == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s still holds %d batches after %v (last error: %v)", name, left, wait, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// durableIdleMax bounds waitDurableIdle.
const durableIdleMax = 20 * time.Second

// median returns the middle of xs (the mean of the two middle ones for an
// even count); xs is not modified.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
