package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// partitioned spreads the events of one durable type over the batchers of
// its partitions, by symbol ([schemas.Partition]): each partition has its
// own batch, subject (<prefix>.ingest.<type>.<partition>) and flush rules,
// so that a batch holds the events of one partition only, which the
// workers process one batch at a time (bus.NewPartitions): a symbol's
// events keep the order in which they reached the batcher.
//
// A request whose events fall in several partitions adds each share to
// its partition's batcher, in the order of its events within each; the
// request waits for every batch holding one of its events, as it would
// for a request split over several batches of one batcher. The
// partitions share the type's counts (requests entered, bytes reserved,
// events unacknowledged): the handler enters and reserves on parts[0].
type partitioned struct {
	parts    []*batcher
	arrivals arrivals // the type's requests, for the parts' idle flush
}

// arrivals is the smoothed gap between a type's requests, as
// [batcher.noteArrivalLocked] keeps it for one batcher.
type arrivals struct {
	mu   sync.Mutex
	last int64
	ewma atomic.Int64
}

// note records a request that arrived at Unix ns t.
func (a *arrivals) note(t int64) {
	a.mu.Lock()
	if a.last != 0 {
		e := a.ewma.Load()
		a.ewma.Store(e + (max(t-a.last, 0)-e)/8)
	}
	a.last = max(a.last, t)
	a.mu.Unlock()
}

// gap returns the smoothed gap in ns.
func (a *arrivals) gap() int64 { return a.ewma.Load() }

// maxPartitionLinger bounds the linger of a partition's batcher.
const maxPartitionLinger = 8 * time.Millisecond

// partitionLinger is the linger of each of n partitions' batchers: the
// type's linger times n, up to maxPartitionLinger (never below the
// type's). A partition gets 1/n of the type's events, so its batch would
// fill n times slower; and a worker group processes a partition one batch
// at a time, so a partition drains its batches' events at most at the
// batch size over the time one batch takes through a worker (its store
// and ack round trips, a few ms on a loaded machine). A batch that
// lingers less than that time leaves the partition's drain below its
// arrivals whatever the rate (measured: the durable publish rate fell 6
// to 10 times at 8 partitions with 1 ms; workers/PARTITIONS.md). The idle
// flush still sends a lone request's events at once.
func partitionLinger(linger time.Duration, n int) time.Duration {
	return max(linger, min(linger*time.Duration(n), maxPartitionLinger))
}

// newPartitioned makes head (the type's batcher, on partition 0's subject)
// the first of n partitions' batchers.
func newPartitioned(head *batcher, s schemas.Subjects, k schemas.Kind, n int, msgID string) *partitioned {
	p := &partitioned{parts: make([]*batcher, n)}
	p.arrivals.ewma.Store(1 << 62) // quiet until it has seen traffic, as a batcher
	p.parts[0] = head
	head.typeArrivals = &p.arrivals
	head.msgID = msgID + "0."
	head.linger = partitionLinger(head.opts.Linger, n)
	for i := 1; i < n; i++ {
		b := newPartBatcher(head, s.IngestPartition(k, i))
		b.msgID = msgID + strconv.Itoa(i) + "."
		b.linger, b.typeArrivals = head.linger, &p.arrivals
		if b.tracer != nil {
			b.spanName = "publish " + b.subject
		}
		p.parts[i] = b
	}
	for _, b := range p.parts {
		b.ordered = true
		for _, o := range p.parts {
			if o != b {
				b.siblings = append(b.siblings, o)
			}
		}
	}
	return p
}

// symbol returns the symbol an event is partitioned by ("" when it has
// none: such an event goes to partition 0 and is rejected by the workers).
func symbol(ev *schemas.Event) string {
	switch ev.Kind {
	case schemas.KindQuote:
		return ev.Quote.Symbol
	case schemas.KindTrade:
		return ev.Trade.Symbol
	}
	return ""
}

// add hands the request's encoded events (st.enc split at st.ends) to
// their partitions' batchers, as [batcher.addTraced] does for one: the
// request entered parts[0] once and reserved its bytes there. It returns
// the batches holding the events, appended to touched.
func (p *partitioned) add(st *reqState, arrived int64, wait bool, touched []*batch, call batchWaiter, sc *trace.SpanContext) []*batch {
	n := len(p.parts)
	p.arrivals.note(arrived)
	var counts [bus.MaxPartitions]int32
	st.part = st.part[:0]
	for i := range st.events {
		q := schemas.Partition(symbol(&st.events[i]), n)
		st.part = append(st.part, uint8(q))
		counts[q]++
	}
	used := 0
	for q := range n {
		if counts[q] > 0 {
			used++
		}
	}
	if used == 1 {
		return p.parts[st.part[0]].addTraced(st.enc, st.ends, arrived, wait, touched, call, sc)
	}
	// Regroup the encodings by partition, keeping their order within
	// each; a partition's ends are relative to its share.
	var starts [bus.MaxPartitions + 1]int32
	for q := range n {
		starts[q+1] = starts[q] + counts[q]
	}
	if cap(st.order) < len(st.events) {
		st.order = make([]int32, len(st.events))
	}
	st.order = st.order[:len(st.events)]
	next := starts
	for i, q := range st.part {
		st.order[next[q]] = int32(i)
		next[q]++
	}
	st.penc, st.pends = st.penc[:0], st.pends[:0]
	// Each addTraced below leaves once: enter for the shares after the
	// first, so that none sees the type idle before the last is added.
	p.parts[0].active.Add(int64(used - 1))
	for q := range n {
		if counts[q] == 0 {
			continue
		}
		from, first := len(st.penc), len(st.pends)
		for _, i := range st.order[starts[q]:starts[q+1]] {
			lo := 0
			if i > 0 {
				lo = st.ends[i-1]
			}
			st.penc = append(st.penc, st.enc[lo:st.ends[i]]...)
			st.pends = append(st.pends, len(st.penc)-from)
		}
		touched = p.parts[q].addTraced(st.penc[from:], st.pends[first:], arrived, wait, touched, call, sc)
	}
	// The last share's add saw the type idle, if it is, and flushed every
	// partition's batch (the earlier shares' with them).
	return touched
}

// flushAll publishes every partition's batch (shutdown).
func (p *partitioned) flushAll() {
	for _, b := range p.parts {
		b.flushAll()
	}
}
