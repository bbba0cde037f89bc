package workers

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// rejectCodes are the validation codes with a pre-created
// sluice_worker_rejected_total series; any other code counts as "other".
var rejectCodes = [...]string{
	schemas.CodeMissingField,
	schemas.CodeInvalidField,
	schemas.CodeCrossedQuote,
	schemas.CodeNonPositivePrice,
	schemas.CodeNegativeSize,
	schemas.CodeOutOfRange,
	schemas.CodeOffTick,
	schemas.CodeOffLot,
	schemas.CodePriceOutOfBand,
	schemas.CodeStale,
	schemas.CodeFutureTimestamp,
	schemas.CodeUnknownInstrument,
	schemas.CodeUnknownVersion,
	schemas.CodeTooLarge,
	"other",
}

// codeIndex returns the index of code in rejectCodes, the last for an
// unlisted code. It does not allocate.
func codeIndex(code string) int {
	for i, c := range rejectCodes[:len(rejectCodes)-1] {
		if c == code {
			return i
		}
	}
	return len(rejectCodes) - 1
}

// workerMetrics are a worker's metrics, all created once in New. Series of
// one group are shared by the workers of that group that use the same Set.
type workerMetrics struct {
	batches       *metrics.Counter // every message received on an ingest subject
	replies       *metrics.Counter // reply messages published
	decodeErrors  *metrics.Counter // frames cut short or events with undecodable data
	drops         *metrics.Counter // batches dropped by the NATS client past the pending limits
	publishErrors *metrics.Counter // publishes the NATS client refused
	stageErrors   *metrics.Counter // batches abandoned because a stage failed
	abandoned     *metrics.Counter // batches skipped by a Shutdown whose context ended
	duration      *metrics.Histogram
	inflight      *metrics.Gauge // batches being processed
	queued        *metrics.Gauge // batches waiting: queue plus subscription pending
	// stages are the per-stage latency histograms of the group's batches,
	// indexed by stage: observed once per batch, never per event.
	stages [numStages]*metrics.Histogram
}

// stage names a step of a batch's trip through a worker, timed into
// sluice_worker_stage_seconds{group,stage}.
type stage uint8

const (
	stageTransit        stage = iota // the batch's Sluice-Sent (gateway) to its receipt here: NATS transit and queueing (durable: the stream's backlog too)
	stageQueue                       // received until a processing goroutine took it
	stageValidateEnrich              // decoded, validated, enriched (the stages)
	stagePublish                     // enriched events, dead letters and replies handed to NATS (durable: until stored, the acks)
	numStages
)

var stageNames = [numStages]string{"transit", "queue", "validate_enrich", "publish"}

// observe times stage s from from to to, skipping a negative span (a
// transit between hosts whose clocks disagree).
func (m *workerMetrics) observe(s stage, from, to time.Time) {
	if d := to.Sub(from); d >= 0 {
		m.stages[s].Update(d.Seconds())
	}
}

// observeTransit times a batch's transit from its Sluice-Sent header to
// recv, when it has one.
func (m *workerMetrics) observeTransit(h nats.Header, recv time.Time) {
	v := h[schemas.HeaderSent]
	if len(v) == 0 {
		return
	}
	if sent := schemas.ParseSent(v[0]); sent > 0 {
		if d := recv.UnixNano() - sent; d >= 0 {
			m.stages[stageTransit].Update(float64(d) / 1e9)
		}
	}
}

// kindMetrics are the per-kind series of a worker.
type kindMetrics struct {
	enriched *metrics.Counter
	rejected *metrics.Counter
	// byCode counts rejected events by their first code, indexed as
	// rejectCodes: the series add up to rejected.
	byCode [len(rejectCodes)]*metrics.Counter
}

func newWorkerMetrics(s *metrics.Set, group string) workerMetrics {
	g := `{group="` + group + `"}`
	m := workerMetrics{
		batches:       s.GetOrCreateCounter("sluice_worker_batches_total" + g),
		replies:       s.GetOrCreateCounter("sluice_worker_replies_total" + g),
		decodeErrors:  s.GetOrCreateCounter("sluice_worker_decode_errors_total" + g),
		drops:         s.GetOrCreateCounter("sluice_worker_slow_consumer_drops_total" + g),
		publishErrors: s.GetOrCreateCounter("sluice_worker_publish_errors_total" + g),
		stageErrors:   s.GetOrCreateCounter("sluice_worker_stage_errors_total" + g),
		abandoned:     s.GetOrCreateCounter("sluice_worker_abandoned_batches_total" + g),
		duration:      s.GetOrCreateHistogram("sluice_worker_batch_duration_seconds" + g),
		inflight:      s.GetOrCreateGauge("sluice_worker_inflight_batches"+g, nil),
		queued:        s.GetOrCreateGauge("sluice_worker_queued_batches"+g, nil),
	}
	for i, name := range stageNames {
		m.stages[i] = s.GetOrCreateHistogram(`sluice_worker_stage_seconds{group="` + group + `",stage="` + name + `"}`)
	}
	return m
}

func newKindMetrics(s *metrics.Set, group string, k schemas.Kind) *kindMetrics {
	l := `{group="` + group + `",type="` + k.String() + `"`
	km := &kindMetrics{
		enriched: s.GetOrCreateCounter("sluice_worker_events_total" + l + `,outcome="enriched"}`),
		rejected: s.GetOrCreateCounter("sluice_worker_events_total" + l + `,outcome="rejected"}`),
	}
	for i, code := range rejectCodes {
		km.byCode[i] = s.GetOrCreateCounter("sluice_worker_rejected_total" + l + `,code="` + code + `"}`)
	}
	return km
}
