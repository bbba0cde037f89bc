package gateway

import (
	"sync"
	"sync/atomic"
)

// outstandingSlots is the ring size of [outstanding]: more batches than this
// unfinished at once (at the default 128 events a batch, half a million
// events) and the oldest are counted as lost.
const outstandingSlots = 4096

// outstanding counts, exactly, the events of the batches a batcher has
// handed to NATS that no worker has reported done (in a done frame): in
// transit, queued at the workers or being processed. It is this gateway's
// share of its group's depth. A batch that no done frame ever names (its
// worker died holding it, NATS dropped it, or the frame itself was lost:
// core NATS is at most once) is expired after lostAfter, so a loss costs
// depth for a bounded time rather than for ever.
//
// One lock, taken once per batch published, per batch in a done frame and
// per expiry pass; never per event.
type outstanding struct {
	events atomic.Int64 // the sum of n over live slots

	mu      sync.Mutex
	slots   [outstandingSlots]outSlot
	oldest  uint64 // lowest sequence the expiry walk has not passed
	newest  uint64 // highest sequence recorded
	expired uint64 // batches expired or overwritten unfinished
}

// outSlot is one batch: its sequence, events (0 once done) and publish time.
type outSlot struct {
	seq uint64
	n   int64
	at  int64
}

// sent records batch seq of n events, handed to NATS at unix ns at; n is 0
// for a batch whose publish failed (it is recorded so that the expiry walk
// passes it).
func (o *outstanding) sent(seq uint64, n int64, at int64) {
	o.mu.Lock()
	s := &o.slots[seq%outstandingSlots]
	if s.n != 0 { // an older batch, never reported done: lost
		o.events.Add(-s.n)
		o.expired++
	}
	*s = outSlot{seq: seq, n: n, at: at}
	o.events.Add(n)
	if o.oldest == 0 {
		o.oldest = seq
	}
	o.newest = max(o.newest, seq)
	o.mu.Unlock()
}

// done removes batch seq, named by a worker's done frame; a sequence that
// is unknown, already done or expired is ignored.
func (o *outstanding) done(seq uint64) {
	o.mu.Lock()
	if s := &o.slots[seq%outstandingSlots]; s.seq == seq && s.n != 0 {
		o.events.Add(-s.n)
		s.n = 0
	}
	o.mu.Unlock()
}

// expire drops the batches published before cutoff (unix ns) that are
// still unfinished, walking from the oldest; it stops at the first batch
// that is younger or not published yet.
func (o *outstanding) expire(cutoff int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.oldest != 0 && o.oldest <= o.newest {
		s := &o.slots[o.oldest%outstandingSlots]
		switch {
		case s.seq < o.oldest: // not published yet
			return
		case s.seq > o.oldest || s.n == 0: // overwritten, or done
		case s.at < cutoff:
			o.events.Add(-s.n)
			s.n = 0
			o.expired++
		default:
			return
		}
		o.oldest++
	}
}

// lost returns how many batches were expired unfinished.
func (o *outstanding) lost() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.expired
}
