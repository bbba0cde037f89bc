package workers

import (
	"github.com/VictoriaMetrics/metrics"

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
	return workerMetrics{
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
