package gateway

import (
	"fmt"
	"time"

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
	// stages are the per-stage latency histograms, indexed by stage.
	stages [numStages]*metrics.Histogram
}

// stage names a step of a request's trip through the gateway, timed into
// sluice_gateway_stage_seconds{stage}: once per request (per batch or per
// reply frame where said), never per event.
type stage uint8

const (
	stageAdmit        stage = iota // arrival to admitted (auth, rate limit, concurrency, depth)
	stageDecode                    // body read, decoded and encoded as MessagePack CloudEvents
	stageBatchWait                 // handed to the batcher until its batch went to NATS
	stagePublish                   // batch handed to NATS until done (core) or stored (durable: the ack)
	stageResults                   // published until every result is back (Prefer: return=representation)
	stageReplyTransit              // a reply frame from the worker's send to its receipt here, per frame
	stageWrite                     // results in (or published) until the answer is written
	numStages
)

var stageNames = [numStages]string{"admit", "decode", "batch_wait", "publish", "results", "reply_transit", "response_write"}

// observe times stage s from from to to (Unix ns), skipping a negative
// span (the wall clock stepped back, or a transit between hosts whose
// clocks disagree).
func (m *gatewayMetrics) observe(s stage, from, to int64) {
	if d := to - from; d >= 0 {
		m.stages[s].Update(float64(d) / 1e9)
	}
}

// now returns the wall clock in Unix ns, as the stage times are kept.
func now() int64 { return time.Now().UnixNano() }

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
	for i, name := range stageNames {
		m.stages[i] = s.NewHistogram(fmt.Sprintf(`sluice_gateway_stage_seconds{stage=%q}`, name))
	}
	return m
}

// answered counts the request's answer and keeps its status for its span.
func (s *Server) answered(st *reqState, code int) {
	st.status = code
	s.m.status(code)
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

// seconds converts a duration in nanoseconds to the seconds histograms
// take.
func seconds(ns int64) float64 { return float64(ns) / 1e9 }
