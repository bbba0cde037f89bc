package gateway

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/schemas"
)

// statuses the gateway answers with; each gets a counter created up front.
var knownStatuses = []int{200, 202, 400, 404, 405, 408, 413, 415, 422, 429, 431, 499, 500, 503, 504}

// gatewayMetrics are created once at start-up; nothing is built per call.
type gatewayMetrics struct {
	requests          map[int]*metrics.Counter
	requestsOther     *metrics.Counter
	accepted          [3]*metrics.Counter // by kind
	syncEnriched      [3]*metrics.Counter
	syncRejected      [3]*metrics.Counter
	flushed           [numFlushReasons]*metrics.Counter
	batchEvents       *metrics.Histogram
	batchBytes        *metrics.Histogram
	publishErrors     *metrics.Counter
	latencyAsync      *metrics.Histogram
	latencySync       *metrics.Histogram
	repliesLate       *metrics.Counter
	replyDecodeErrors *metrics.Counter
	noResponders      *metrics.Counter
	timeouts          *metrics.Counter
}

func newGatewayMetrics(s *metrics.Set) *gatewayMetrics {
	m := &gatewayMetrics{requests: make(map[int]*metrics.Counter)}
	for _, st := range knownStatuses {
		m.requests[st] = s.NewCounter(fmt.Sprintf(`sluice_gateway_requests_total{status="%d"}`, st))
	}
	m.requestsOther = s.NewCounter(`sluice_gateway_requests_total{status="other"}`)
	for _, k := range schemas.Kinds {
		m.accepted[k] = s.NewCounter(fmt.Sprintf(`sluice_gateway_events_accepted_total{type=%q}`, k))
		m.syncEnriched[k] = s.NewCounter(fmt.Sprintf(`sluice_gateway_results_total{type=%q,outcome="enriched"}`, k))
		m.syncRejected[k] = s.NewCounter(fmt.Sprintf(`sluice_gateway_results_total{type=%q,outcome="rejected"}`, k))
	}
	for i, name := range flushReasonNames {
		m.flushed[i] = s.NewCounter(fmt.Sprintf(`sluice_gateway_batches_flushed_total{reason=%q}`, name))
	}
	m.batchEvents = s.NewHistogram(`sluice_gateway_batch_events`)
	m.batchBytes = s.NewHistogram(`sluice_gateway_batch_bytes`)
	m.publishErrors = s.NewCounter(`sluice_gateway_nats_publish_errors_total`)
	m.latencyAsync = s.NewHistogram(`sluice_gateway_request_duration_seconds{mode="async"}`)
	m.latencySync = s.NewHistogram(`sluice_gateway_request_duration_seconds{mode="result"}`)
	m.repliesLate = s.NewCounter(`sluice_gateway_replies_dropped_total`)
	m.replyDecodeErrors = s.NewCounter(`sluice_gateway_reply_decode_errors_total`)
	m.noResponders = s.NewCounter(`sluice_gateway_no_responders_total`)
	m.timeouts = s.NewCounter(`sluice_gateway_result_timeouts_total`)
	return m
}

func (m *gatewayMetrics) status(code int) {
	if c, ok := m.requests[code]; ok {
		c.Inc()
		return
	}
	m.requestsOther.Inc()
}

func (m *gatewayMetrics) batchFlushed(reason, n, size int, err error) {
	m.flushed[reason].Inc()
	m.batchEvents.Update(float64(n))
	m.batchBytes.Update(float64(size))
	if err != nil {
		m.publishErrors.Inc()
	}
}
