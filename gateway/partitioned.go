package gateway

import (
	"strconv"

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
	parts []*batcher
}

// newPartitioned makes head (the type's batcher, on partition 0's subject)
// the first of n partitions' batchers.
func newPartitioned(head *batcher, s schemas.Subjects, k schemas.Kind, n int, msgID string) *partitioned {
	p := &partitioned{parts: make([]*batcher, n)}
	p.parts[0] = head
	head.msgID = msgID + "0."
	for i := 1; i < n; i++ {
		b := newPartBatcher(head, s.IngestPartition(k, i))
		b.msgID = msgID + strconv.Itoa(i) + "."
		if b.tracer != nil {
			b.spanName = "publish " + b.subject
		}
		p.parts[i] = b
	}
	for _, b := range p.parts {
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
	var added [bus.MaxPartitions]bool
	last := -1
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
		added[q] = true
		last = q
	}
	// The last share's add saw the type idle, if it is, and flushed its
	// own batch; the earlier shares' batches follow the same rule.
	for q := range n {
		if added[q] && q != last {
			p.parts[q].flushIdle()
		}
	}
	return touched
}

// flushAll publishes every partition's batch (shutdown).
func (p *partitioned) flushAll() {
	for _, b := range p.parts {
		b.flushAll()
	}
}
