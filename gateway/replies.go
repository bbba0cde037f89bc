package gateway

import (
	"errors"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// ErrTooManyWaiting means every reply slot is taken (Options.MaxWaiting):
// the request is refused with 503 rather than queued.
var ErrTooManyWaiting = errors.New("too many requests waiting for results")

// maxKeptResults bounds the result storage a free slot keeps for reuse.
const maxKeptResults = 128

// result is one event's outcome as a waiting request sees it.
type result struct {
	status int
	event  []byte // enriched event, MessagePack, aliasing the reply message
	errs   []schemas.FieldError
}

// waiter is a request waiting for the results of its n events.
type waiter struct {
	mu      sync.Mutex
	gen     uint32
	want    int
	got     int
	results []result
	done    chan struct{} // buffered 1; receives once when got == want
	notify  resultWaiter  // instead of done, when set (the fast edge)
}

// resultWaiter is a request that does not wait on its waiter's done
// channel (the fast edge's): resultsIn is called once every result is in,
// from the inbox subscription's goroutine, with the request's correlation
// id. It may come after the request gave its slot up (timed out): the
// request checks corr.
type resultWaiter interface {
	resultsIn(corr uint64)
}

// watch makes corr's waiter call n instead of signalling done.
func (t *replyTable) watch(corr uint64, n resultWaiter) {
	w := &t.slots[uint32(corr)-1]
	w.mu.Lock()
	w.notify = n
	w.mu.Unlock()
}

// replyTable matches reply frames to waiting requests. A correlation id is
// (generation << 32 | slot+1): a fixed table of slots bounds how many
// requests wait at once, a reply for a slot whose generation moved on (its
// request timed out) is dropped, and lookups take only the slot's own
// uncontended lock.
type replyTable struct {
	slots []waiter
	free  chan uint32
	m     *gatewayMetrics
}

func newReplyTable(n int, m *gatewayMetrics) *replyTable {
	t := &replyTable{slots: make([]waiter, n), free: make(chan uint32, n), m: m}
	for i := range t.slots {
		t.slots[i].done = make(chan struct{}, 1)
		t.free <- uint32(i)
	}
	return t
}

// acquire reserves a slot for n results and returns its correlation id.
func (t *replyTable) acquire(n int) (uint64, *waiter, error) {
	var i uint32
	select {
	case i = <-t.free:
	default:
		return 0, nil, ErrTooManyWaiting
	}
	w := &t.slots[i]
	w.mu.Lock()
	w.want, w.got = n, 0
	if cap(w.results) < n {
		w.results = make([]result, n)
	}
	w.results = w.results[:n]
	clear(w.results)
	gen := w.gen
	w.mu.Unlock()
	return uint64(gen)<<32 | uint64(i+1), w, nil
}

// release ends the wait of corr's request and frees its slot; results that
// arrive later are dropped.
func (t *replyTable) release(corr uint64) {
	i := uint32(corr) - 1
	w := &t.slots[i]
	w.mu.Lock()
	w.gen++
	w.want = 0
	w.notify = nil
	clear(w.results)
	if cap(w.results) > maxKeptResults {
		// A large request's results are not kept per slot: MaxWaiting
		// slots each holding MaxEvents results would be gigabytes.
		w.results = nil
	}
	select {
	case <-w.done:
	default:
	}
	w.mu.Unlock()
	t.free <- i
}

// deliver stores one result; it is called from the inbox subscription's
// goroutine only.
func (t *replyTable) deliver(res *schemas.Result) {
	if !wellFormed(res) {
		// A worker bug: taking it would end a wait with no answer to
		// give (and a status 0 slips past the duplicate check).
		t.m.replyDecodeErrors.Inc()
		return
	}
	i := uint32(res.Corr) - 1
	if uint64(i) >= uint64(len(t.slots)) || res.Corr == 0 {
		t.m.repliesLate.Inc()
		return
	}
	w := &t.slots[i]
	w.mu.Lock()
	if w.gen != uint32(res.Corr>>32) || int(res.Seq) >= w.want || w.results[res.Seq].status != 0 {
		w.mu.Unlock()
		t.m.repliesLate.Inc()
		return
	}
	r := &w.results[res.Seq]
	r.status, r.event = res.Status, res.Event
	if len(res.Errors) > 0 {
		r.errs = append([]schemas.FieldError(nil), res.Errors...)
	}
	w.got++
	var n resultWaiter
	if w.got == w.want {
		if n = w.notify; n == nil {
			w.done <- struct{}{}
		}
	}
	w.mu.Unlock()
	if n != nil {
		n.resultsIn(res.Corr)
	}
}

// onReply handles one reply frame from a worker.
func (t *replyTable) onReply(msg *nats.Msg) {
	if isNoResponders(msg) {
		// The NATS server's notice that no worker subscribed to a batch
		// that had events waiting: it names no correlation, so the
		// requests wait for their deadline; count it, it is no frame.
		t.m.noResponders.Inc()
		return
	}
	if v := msg.Header[schemas.HeaderSent]; len(v) > 0 {
		if sent := schemas.ParseSent(v[0]); sent > 0 {
			t.m.observe(stageReplyTransit, sent, now())
		}
	}
	r := schemas.NewReader(msg.Data)
	n := r.ArrayHeader()
	var res schemas.Result
	for i := 0; i < n; i++ {
		if err := res.DecodeMsgpack(&r); err != nil {
			t.m.replyDecodeErrors.Inc()
			return
		}
		t.deliver(&res)
	}
	if r.Err() != nil {
		t.m.replyDecodeErrors.Inc()
	}
}

// isNoResponders reports whether msg is the NATS server's no-responders
// status message (an empty message with header Status: 503).
func isNoResponders(msg *nats.Msg) bool {
	return len(msg.Data) == 0 && msg.Header != nil && msg.Header.Get("Status") == "503"
}

// wellFormed reports whether res is a result the contract allows: 200 with
// the enriched event, or 422.
func wellFormed(res *schemas.Result) bool {
	switch res.Status {
	case http.StatusOK:
		return len(res.Event) > 0
	case http.StatusUnprocessableEntity:
		return true
	}
	return false
}
