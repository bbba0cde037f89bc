package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/schemas"
)

// handleEvents serves POST /v1/events/{type}.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	kind, ok := schemas.ParseKind(r.PathValue("type"))
	st := getState()
	defer putState(st)
	if !ok {
		s.fail(w, st, &problem{Status: http.StatusNotFound,
			Detail: fmt.Sprintf("unknown event type %q: see GET /v1/types", r.PathValue("type"))})
		st.body = s.body.drainRefused(w, r, http.StatusNotFound, st.body)
		return
	}
	ret := preferredReturn(r.Header)
	if s.opts.Tracing != nil {
		if st.span = s.startRequestSpan(r, kind); st.span != nil {
			defer func() { endRequestSpan(st, st.status) }()
		}
	}
	ga := s.admitRequest(w, r, kind, st, start)
	if ga == nil {
		return
	}
	st.admitted = now()
	s.m.observe(stageAdmit, start.UnixNano(), st.admitted)
	bt := s.batchers[kind]
	bt.enter()
	status, corr := s.admitAndPublish(w, r, kind, bt, st, start, ret == returnRepresentation)
	switch {
	case status != 0:
		s.releaseSlot(ga, time.Time{}, false)
		st.body = s.body.drainRefused(w, r, status, st.body)
	case corr == 0:
		s.respondAccepted(w, st, ret == returnMinimal)
		s.m.observe(stageWrite, st.published, now())
		s.releaseSlot(ga, time.Time{}, false)
		s.m.latencyAsync.UpdateDuration(start)
	default:
		timedOut := s.respondResults(w, r, st, corr, start)
		s.releaseSlot(ga, time.Unix(0, st.published), timedOut)
		s.m.latencySync.UpdateDuration(start)
	}
}

// releaseSlot returns the request's concurrency slot. The limit learns
// from the round trip through the workers (published is when the events
// were handed to NATS): it is the group's congestion signal. Requests that
// did not wait for the workers return their slot without a sample.
func (s *Server) releaseSlot(ga *groupAdmission, published time.Time, timedOut bool) {
	switch {
	case s.adm.opts.Disabled:
	case published.IsZero():
		ga.limit.Done()
	default:
		ga.limit.Release(time.Since(published), timedOut)
	}
}

// releaseSlotRTT is releaseSlot for a request that waited for the workers,
// its round trip already measured (the fast edge's: no clock read of its
// own).
func (s *Server) releaseSlotRTT(ga *groupAdmission, rtt time.Duration, timedOut bool) {
	if !s.adm.opts.Disabled {
		ga.limit.Release(rtt, timedOut)
	}
}

// admitAndPublish reads, decodes, encodes and batches the request's events
// and waits until their batches are handed to NATS. It has answered the
// request itself when it returns a non-zero status; corr is the reply
// correlation id when the request waits for results. It balances bt.enter.
func (s *Server) admitAndPublish(w http.ResponseWriter, r *http.Request, kind schemas.Kind, bt *batcher, st *reqState, start time.Time, wait bool) (int, uint64) {
	var derr *decodeError
	st.body, derr = s.body.read(w, r, st.body, start)
	return s.publishBody(w, r, kind, bt, st, start, wait, derr, nil)
}

// publishBody is admitAndPublish once the body is in st.body (or derr
// says why not). With call (the fast edge), it does not wait: the batches
// holding the events call call.batchDone when they are published.
func (s *Server) publishBody(w http.ResponseWriter, r *http.Request, kind schemas.Kind, bt *batcher, st *reqState, start time.Time, wait bool, derr *decodeError, call batchWaiter) (int, uint64) {
	entered := true
	defer func() {
		if entered {
			bt.leave()
		}
	}()
	if derr == nil {
		st.events, st.single, derr = decodeBody(kind, r.Header, st.body, s.opts.MaxEvents, st.events)
	}
	if derr != nil {
		if derr.status == http.StatusRequestTimeout && r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close") // the rest of the body may still come
		}
		return s.fail(w, st, &problem{Status: derr.status, Detail: derr.detail, Errors: derr.errs}), 0
	}
	n := len(st.events)
	if n == 0 {
		return s.fail(w, st, &problem{Status: http.StatusBadRequest, Detail: "no events in the body"}), 0
	}
	var key string
	if v := r.Header[idempotencyHeader]; len(v) > 0 { // canonical already: no Get's canonicalisation per request
		key = v[0]
	}
	if key != "" {
		if p := checkIdempotencyKey(key, n); p != nil {
			return s.fail(w, st, p), 0
		}
	}
	var corr uint64
	if wait {
		c, _, err := s.replies.acquire(n)
		if err != nil {
			return s.fail(w, st, &problem{Status: http.StatusServiceUnavailable, RetryAfter: 1,
				Detail: fmt.Sprintf("%v (%d, flag --max-waiting); retry later or publish without Prefer: return=representation", err, s.opts.MaxWaiting)}), 0
		}
		corr = c
		if call != nil {
			call.expect(corr) // before any batch holding the events can go out
		}
	}
	st.trace, st.traceState = requestTrace(r.Header)
	if st.span != nil {
		traceEvents(st)
	}
	s.finishEvents(st, start.UnixNano(), corr, key)
	setTraceResponse(w, st)
	st.enc, st.ends = st.enc[:0], st.ends[:0]
	for i := range st.events {
		st.enc = st.events[i].AppendMsgpack(st.enc)
		st.ends = append(st.ends, len(st.enc))
	}
	if p := oversized(st.ends, bt.maxEvent(), len(st.events) == 1 && st.single); p != nil {
		s.releaseCorr(corr)
		return s.fail(w, st, p), 0
	}
	if err := bt.reserve(len(st.enc)); err != nil {
		s.releaseCorr(corr)
		return s.fail(w, st, &problem{Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Detail: fmt.Sprintf("%v (%d bytes of %s events, flag --batch-max-pending): NATS is not keeping up; retry later", err, s.opts.Batch.MaxPendingBytes, kind)}), 0
	}
	entered = false
	st.added = now()
	s.m.observe(stageDecode, st.admitted, st.added)
	if call != nil {
		// The batches call call.batchDone, maybe before add returns: st
		// may be answered and reused by then, so nothing of it is kept.
		var touched [4]*batch
		var sc *trace.SpanContext // copied into the batches under their lock, before any answer
		if st.span != nil {
			sc = &st.sc
		}
		s.addEvents(kind, bt, st, start.UnixNano(), corr != 0, touched[:0], call, sc)
		return 0, corr
	}
	if st.span != nil {
		st.span.AddEvent("decoded")
		st.touched = s.addEvents(kind, bt, st, start.UnixNano(), corr != 0, st.touched[:0], nil, &st.sc)
	} else {
		st.touched = s.addEvents(kind, bt, st, start.UnixNano(), corr != 0, st.touched[:0], nil, nil)
	}
	if err := waitBatches(r, st.touched); err != nil {
		s.releaseCorr(corr)
		return s.fail(w, st, publishProblem(err)), 0
	}
	st.published = now()
	s.observeBatches(st)
	if st.span != nil {
		st.span.AddEvent("published")
	}
	s.m.accepted[kind].Add(n)
	return 0, corr
}

// addEvents hands the request's encoded events to bt, or to the batchers
// of their partitions when kind is partitioned.
func (s *Server) addEvents(kind schemas.Kind, bt *batcher, st *reqState, arrived int64, wait bool, touched []*batch, call batchWaiter, sc *trace.SpanContext) []*batch {
	if p := s.parts[kind]; p != nil {
		return p.add(st, arrived, wait, touched, call, sc)
	}
	return bt.addTraced(st.enc, st.ends, arrived, wait, touched, call, sc)
}

func (s *Server) releaseCorr(corr uint64) {
	if corr != 0 {
		s.replies.release(corr)
	}
}

// observeBatches times the request's wait in the batcher and its batches'
// publish, up to the last of them to go out.
func (s *Server) observeBatches(st *reqState) {
	var sent int64
	for _, b := range st.touched {
		sent = max(sent, b.sent)
	}
	if sent != 0 {
		s.m.observe(stageBatchWait, st.added, sent)
		s.m.observe(stagePublish, sent, st.published)
	}
}

// waitBatches waits until every batch holding the request's events has been
// published and returns the first publish error.
func waitBatches(r *http.Request, touched []*batch) error {
	for _, b := range touched {
		select {
		case <-b.done:
		case <-r.Context().Done():
			// The batch still goes out; the client is gone.
			<-b.done
		}
		if b.err != nil {
			return b.err
		}
	}
	return nil
}

// idempotencyHeader names the client's key for events sent without an id.
const idempotencyHeader = "Idempotency-Key"

// checkIdempotencyKey refuses an Idempotency-Key that cannot make the ids
// of n events: printable ASCII without spaces, short enough for the
// CloudEvents id bound with "-<index>" appended.
func checkIdempotencyKey(key string, n int) *problem {
	if room := schemas.MaxIDLen - 1 - len(strconv.Itoa(n-1)); len(key) > room {
		return &problem{Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("%s is %d characters long, more than the %d that ids of %d events leave", idempotencyHeader, len(key), room, n)}
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return &problem{Status: http.StatusBadRequest,
				Detail: fmt.Sprintf("%s must be printable ASCII without spaces", idempotencyHeader)}
		}
	}
	return nil
}

// finishEvents fills what the client left out: ids, source, subject, time,
// ts, the receive time and the correlation of waiting events. An event
// without an id gets key when the request is one event, key-<index> in a
// batch (the Idempotency-Key header: a client retrying the request gets
// the same ids, and the pipeline stores each event once), or a fresh id
// without a key.
func (s *Server) finishEvents(st *reqState, now int64, corr uint64, key string) {
	missing := 0
	for i := range st.events {
		if st.events[i].ID == "" {
			missing++
		}
	}
	var seq uint64
	if missing > 0 {
		per := maxIDLen
		if key != "" {
			per = len(key) + 1 + 10
		} else {
			seq = s.ids.reserve(missing)
		}
		if need := missing * per; cap(st.ids) < need {
			st.ids = make([]byte, 0, need)
		}
	}
	st.ids = st.ids[:0]
	keyed := key != "" && !(st.single && len(st.events) == 1)
	for i := range st.events {
		ev := &st.events[i]
		if ev.ID == "" {
			start := len(st.ids)
			switch {
			case keyed:
				st.ids = append(st.ids, key...)
				st.ids = append(st.ids, '-')
				st.ids = strconv.AppendInt(st.ids, int64(i), 10)
			case key != "":
				st.ids = append(st.ids, key...)
			default:
				st.ids = s.ids.appendID(st.ids, seq)
				seq++
			}
			ev.ID = unsafe.String(&st.ids[start], len(st.ids)-start)
		}
		if ev.Source == "" {
			ev.Source = s.opts.Source
		}
		ev.ReceivedAt = now
		if ev.TraceParent == "" {
			ev.TraceParent, ev.TraceState = st.trace, st.traceState
		}
		fillTime(ev, now)
		if corr != 0 {
			ev.Corr, ev.Seq = corr, uint32(i)
		}
	}
}

// requestTrace returns the request's W3C trace context (the Traceparent
// and Tracestate headers), or empty strings when it has none or when its
// traceparent is not valid ([schemas.ValidTraceParent]): a malformed one is
// ignored, as W3C Trace Context asks. A repeated header counts by its first
// value; a tracestate past [schemas.MaxTraceStateLen] is dropped.
func requestTrace(h http.Header) (parent, state string) {
	v := h["Traceparent"] // canonical already: no Get's canonicalisation per request
	if len(v) == 0 || !schemas.ValidTraceParent(v[0]) {
		return "", ""
	}
	if vs := h["Tracestate"]; len(vs) > 0 && len(vs[0]) <= schemas.MaxTraceStateLen {
		state = vs[0]
	}
	return v[0], state
}

// setTraceResponse names the trace the request's events carry in the
// traceresponse header (W3C Trace Context Level 2), when they carry one.
func setTraceResponse(w http.ResponseWriter, st *reqState) {
	if st.trace != "" {
		w.Header()["Traceresponse"] = []string{st.trace}
	}
}

// fillTime sets subject, time and ts: ts defaults to the CloudEvents time,
// then to the receive time; time follows ts.
func fillTime(ev *schemas.Event, now int64) {
	var sym string
	var present, invalid *uint16
	var ts *int64
	switch ev.Kind {
	case schemas.KindQuote:
		sym, present, invalid, ts = ev.Quote.Symbol, &ev.Quote.Present, &ev.Quote.Invalid, &ev.Quote.TS
	case schemas.KindTrade:
		sym, present, invalid, ts = ev.Trade.Symbol, &ev.Trade.Present, &ev.Trade.Invalid, &ev.Trade.TS
	default:
		return
	}
	if *present&schemas.FSymbol != 0 && *invalid&schemas.FSymbol == 0 && sym != "" {
		ev.Subject = sym
	}
	if *present&schemas.FTS == 0 {
		*present |= schemas.FTS
		*ts = now
		if ev.Time != 0 {
			*ts = ev.Time
		}
	}
	if *invalid&schemas.FTS == 0 {
		ev.Time = *ts
	} else if ev.Time == 0 {
		ev.Time = now
	}
}

// returnPref is the client's return preference (RFC 7240).
type returnPref uint8

const (
	returnDefault        returnPref = iota
	returnRepresentation            // wait for the workers and answer with the results
	returnMinimal                   // answer 202 without a body
)

// preferredReturn reads the return preference of the Prefer header (RFC
// 7240): the first return preference counts, later ones are ignored, and an
// unknown value leaves the default. Names are matched without case, values
// too (leniently: the RFC's values are case-sensitive); spaces around "=",
// a quoted value and parameters after ";" are allowed. It walks the
// comma-separated preferences in place: splitting them allocated once per
// request.
func preferredReturn(h http.Header) returnPref {
	for _, v := range h.Values("Prefer") {
		for v != "" {
			var p string
			p, v, _ = strings.Cut(v, ",")
			p, _, _ = strings.Cut(p, ";")
			name, val, ok := strings.Cut(p, "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "return") {
				continue
			}
			val = strings.TrimSpace(val)
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			switch {
			case strings.EqualFold(val, "representation"):
				return returnRepresentation
			case strings.EqualFold(val, "minimal"):
				return returnMinimal
			}
			return returnDefault
		}
	}
	return returnDefault
}

func wantsMsgpack(h http.Header) bool {
	return strings.Contains(h.Get("Accept"), "msgpack")
}

// respondAccepted answers 202 with the accepted count and ids or, when the
// client asked for Prefer: return=minimal, with no body: Go's HTTP/2 server
// then sends the answer as one HEADERS frame in one hand-off to the
// connection's writer, instead of HEADERS and DATA in two.
func (s *Server) respondAccepted(w http.ResponseWriter, st *reqState, minimal bool) {
	if minimal {
		w.Header()["Preference-Applied"] = preferenceMinimal
		w.WriteHeader(http.StatusAccepted)
		s.answered(st, http.StatusAccepted)
		return
	}
	b := append(st.out[:0], `{"accepted":`...)
	b = strconv.AppendInt(b, int64(len(st.events)), 10)
	b = append(b, `,"ids":[`...)
	for i := range st.events {
		if i > 0 {
			b = append(b, ',')
		}
		b = schemas.AppendJSONString(b, st.events[i].ID)
	}
	b = append(b, "]}"...)
	st.out = b
	h := w.Header()
	h["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
	s.answered(st, http.StatusAccepted)
}

var (
	jsonContentType    = []string{"application/json"}
	ceJSONContentType  = []string{"application/cloudevents+json"}
	msgpackContentType = []string{mediaMsgpack}
	preferenceApplied  = []string{"return=representation"}
	preferenceMinimal  = []string{"return=minimal"}
)

// fail answers with a problem and counts it; it returns the status.
func (s *Server) fail(w http.ResponseWriter, st *reqState, p *problem) int {
	st.out = writeProblem(w, p, st.out)
	s.answered(st, p.Status)
	return p.Status
}
