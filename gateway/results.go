package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// respondResults waits for the results of the request's events and answers
// with them: one event gets 200 with the enriched CloudEvent or 422 with its
// validation errors; a collection gets 200 with one result per event, in
// order (see README.md, "Results"). Past the deadline it answers 504 and
// reports timedOut.
func (s *Server) respondResults(w http.ResponseWriter, r *http.Request, st *reqState, corr uint64, start time.Time) (timedOut bool) {
	defer s.replies.release(corr)
	wtr := &s.replies.slots[uint32(corr)-1]
	t := timerPool.Get().(*time.Timer)
	t.Reset(s.opts.RequestTimeout - time.Since(start))
	select {
	case <-wtr.done:
	case <-t.C:
		s.m.timeouts.Inc()
		s.timeout(w, st, wtr)
		timerPool.Put(t)
		return true
	case <-r.Context().Done():
		t.Stop()
		timerPool.Put(t)
		return false
	}
	t.Stop()
	timerPool.Put(t)
	s.answerResults(w, r, st, wtr)
	return false
}

// answerResults answers with the results in wtr, all in: they stay the
// request's until its slot is released. It returns when it was done (Unix
// ns).
func (s *Server) answerResults(w http.ResponseWriter, r *http.Request, st *reqState, wtr *waiter) int64 {
	in := now()
	s.m.observe(stageResults, st.published, in)
	if st.span != nil {
		st.span.AddEvent("results")
	}
	// Every result is in and the slot stays ours until release: reading
	// without the lock is safe, the dispatcher no longer writes to it.
	kind := st.events[0].Kind
	for _, res := range wtr.results {
		if res.status == http.StatusOK {
			s.m.syncEnriched[kind].Inc()
		} else {
			s.m.syncRejected[kind].Inc()
		}
	}
	w.Header()["Preference-Applied"] = preferenceApplied
	if st.single {
		s.respondOne(w, r, st, &wtr.results[0])
	} else {
		s.respondMany(w, r, st, wtr.results)
	}
	end := now()
	s.m.observe(stageWrite, in, end)
	return end
}

func (s *Server) timeout(w http.ResponseWriter, st *reqState, wtr *waiter) {
	wtr.mu.Lock()
	got, want := wtr.got, wtr.want
	wtr.mu.Unlock()
	s.fail(w, st, &problem{Status: http.StatusGatewayTimeout,
		Detail: fmt.Sprintf("%d of %d results arrived within %s (flag --request-timeout); the events were handed to NATS, and with core NATS delivery is at most once: check that workers of the group run",
			got, want, s.opts.RequestTimeout)})
}

func (s *Server) respondOne(w http.ResponseWriter, r *http.Request, st *reqState, res *result) {
	if res.status != http.StatusOK {
		s.fail(w, st, &problem{Status: http.StatusUnprocessableEntity, Errors: res.errs,
			Detail: fmt.Sprintf("event %s failed validation", st.events[0].ID)})
		return
	}
	h := w.Header()
	if wantsMsgpack(r.Header) {
		h["Content-Type"] = msgpackContentType
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(res.event)
		s.answered(st, http.StatusOK)
		return
	}
	out, err := schemas.AppendEventJSON(st.out[:0], res.event)
	st.out = out
	if err != nil {
		s.fail(w, st, &problem{Status: http.StatusInternalServerError, Detail: "worker result: " + err.Error()})
		return
	}
	h["Content-Type"] = ceJSONContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	s.answered(st, http.StatusOK)
}

// respondMany answers a collection: {"enriched": k, "rejected": m,
// "results": [{"id", "status": 200, "event": {...}} | {"id", "status": 422,
// "errors": [...]}]}, or the same as a MessagePack map.
func (s *Server) respondMany(w http.ResponseWriter, r *http.Request, st *reqState, results []result) {
	enriched := 0
	for i := range results {
		if results[i].status == http.StatusOK {
			enriched++
		}
	}
	h := w.Header()
	if wantsMsgpack(r.Header) {
		st.out = appendResultsMsgpack(st.out[:0], st, results, enriched)
		h["Content-Type"] = msgpackContentType
	} else {
		out, err := appendResultsJSON(st.out[:0], st, results, enriched)
		st.out = out
		if err != nil {
			s.fail(w, st, &problem{Status: http.StatusInternalServerError, Detail: "worker result: " + err.Error()})
			return
		}
		h["Content-Type"] = jsonContentType
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(st.out)
	s.answered(st, http.StatusOK)
}

func appendResultsJSON(b []byte, st *reqState, results []result, enriched int) ([]byte, error) {
	b = append(b, `{"enriched":`...)
	b = strconv.AppendInt(b, int64(enriched), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(len(results)-enriched), 10)
	b = append(b, `,"results":[`...)
	for i := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = schemas.AppendJSONString(b, st.events[i].ID)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(results[i].status), 10)
		if results[i].status == http.StatusOK {
			b = append(b, `,"event":`...)
			var err error
			if b, err = schemas.AppendEventJSON(b, results[i].event); err != nil {
				return b, err
			}
		} else {
			b = append(b, `,"errors":`...)
			b = appendFieldErrorsJSON(b, results[i].errs)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

func appendResultsMsgpack(b []byte, st *reqState, results []result, enriched int) []byte {
	b = append(b, "\x83\xa8enriched"...)
	b = schemas.AppendInt(b, int64(enriched))
	b = append(b, "\xa8rejected"...)
	b = schemas.AppendInt(b, int64(len(results)-enriched))
	b = append(b, "\xa7results"...)
	b = schemas.AppendArrayHeader(b, len(results))
	for i := range results {
		b = append(b, "\x83\xa2id"...)
		b = schemas.AppendString(b, st.events[i].ID)
		b = append(b, "\xa6status"...)
		b = schemas.AppendInt(b, int64(results[i].status))
		if results[i].status == http.StatusOK {
			b = append(b, "\xa5event"...)
			b = append(b, results[i].event...)
		} else {
			b = append(b, "\xa6errors"...)
			b = schemas.AppendFieldErrors(b, results[i].errs)
		}
	}
	return b
}
