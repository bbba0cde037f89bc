package stream

import (
	"sync"

	"github.com/sluice-dev/sluice/schemas"
)

// event is one enriched event as received, shared by the cache and every
// queue that holds it; its JSON form is made once, by the first writer
// that needs it, for all subscribers.
type event struct {
	data []byte // the MessagePack CloudEvent; never modified
	once sync.Once
	json []byte
	err  error
}

// JSON returns the event as a CloudEvents JSON object.
func (e *event) JSON() ([]byte, error) {
	e.once.Do(func() { e.json, e.err = schemas.AppendEventJSON(nil, e.data) })
	return e.json, e.err
}

// item is one entry of a subscriber's queue: an enriched event (t set) or
// a marker.
type item struct {
	t        *topic
	ev       *event
	seq      uint64 // the symbol's sequence (sluiceseq)
	pos      uint64 // the stream position (the resume token's)
	replaced uint32 // events this one replaced (sluicereplaced)
	mark     uint8
	count    uint32 // markSnapshotEnd: events in the snapshot
}

const (
	markEvent uint8 = iota
	markSnapshotEnd
)

// minRing is the ring's first size; it grows by doubling up to the limit.
const minRing = 8

// queue is one subscriber's bounded queue. The feed offers to it under the
// feed's lock and never blocks; the subscriber's writer takes from it.
// Quotes (conflate) keep at most one pending item per symbol: a newer one
// takes the place of the pending one and counts it in replaced. Past limit
// items the queue is cut: it drops what it holds and takes nothing more.
//
// Lock order: feed.mu, then queue.mu.
type queue struct {
	mu       sync.Mutex
	ring     []item // len is a power of two
	head     uint64 // next to take
	tail     uint64 // next to fill
	limit    int
	conflate bool
	pending  map[*topic]uint64 // conflate: the position of a symbol's pending item
	cut      bool
	wake     chan struct{} // holds a token when items wait
}

func newQueue(conflate bool, limit int) *queue {
	q := &queue{ring: make([]item, minRing), limit: limit, conflate: conflate, wake: make(chan struct{}, 1)}
	if conflate {
		q.pending = make(map[*topic]uint64)
	}
	return q
}

// offer adds it without blocking; it reports false when the queue is (or
// was just) cut.
func (q *queue) offer(it item) bool {
	q.mu.Lock()
	wasCut := q.cut
	ok := q.offerLocked(it)
	q.mu.Unlock()
	if !wasCut {
		q.signal()
	}
	return ok
}

// signal wakes the writer if it sleeps.
func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) offerLocked(it item) bool {
	if q.cut {
		return false
	}
	if q.conflate && it.t != nil {
		if p, ok := q.pending[it.t]; ok {
			old := &q.ring[p&uint64(len(q.ring)-1)]
			it.replaced += old.replaced + 1
			*old = it
			return true
		}
	}
	n := int(q.tail - q.head)
	if n >= q.limit {
		q.cut = true
		clear(q.ring)
		clear(q.pending)
		q.head = q.tail
		return false
	}
	if n == len(q.ring) {
		q.grow()
	}
	q.ring[q.tail&uint64(len(q.ring)-1)] = it
	if q.conflate && it.t != nil {
		q.pending[it.t] = q.tail
	}
	q.tail++
	return true
}

func (q *queue) grow() {
	ring := make([]item, 2*len(q.ring))
	for p := q.head; p < q.tail; p++ {
		ring[p&uint64(len(ring)-1)] = q.ring[p&uint64(len(q.ring)-1)]
	}
	q.ring = ring
}

// take appends up to max items to dst and reports whether the queue was cut.
func (q *queue) take(dst []item, max int) ([]item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	mask := uint64(len(q.ring) - 1)
	for q.head < q.tail && len(dst) < max {
		it := &q.ring[q.head&mask]
		dst = append(dst, *it)
		if q.conflate && it.t != nil {
			delete(q.pending, it.t)
		}
		*it = item{}
		q.head++
	}
	return dst, q.cut
}
