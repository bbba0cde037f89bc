package benchmarks

import (
	"fmt"
	"time"
)

// scaleCheck holds what the scale scenario saw enter the ingest stream and
// what it read back from the enriched stream, and checks the one against the
// other: every symbol's events stored in the order they were ingested, each
// once, none missing; and, around a worker's kill, how long each partition
// waited for its next stored event. Not safe for concurrent use.
type scaleCheck struct {
	marks map[string]ingestMark
	next  uint64
	// last is, per symbol, the highest ingest position stored so far.
	last   map[string]uint64
	stored map[string]bool
	order  ScaleOrder
	// kill is when a worker was killed (Unix ns), 0 before; first is each
	// partition's first event stored after it, recovered the last store
	// of an event ingested before it.
	kill      int64
	first     map[int]int64
	recovered int64
	// until ends the failover window's load; wait is, per partition, the
	// longest any of its events ingested before until waited after the
	// kill for its store.
	until int64
	wait  map[int]int64
}

// ingestMark is where one event entered the ingest stream, as the suite's
// tap on the ingest subjects saw it.
type ingestMark struct {
	pos       uint64 // order among every event the tap saw
	at        int64  // when the tap saw its frame, Unix ns
	partition int
}

// ScaleOrder is the scale scenario's order check over the enriched stream.
type ScaleOrder struct {
	// Ingested counts the events seen on the ingest subjects, Stored the
	// enriched events read back, Symbols their distinct symbols.
	Ingested int `json:"ingested"`
	Stored   int `json:"stored"`
	Symbols  int `json:"symbols"`
	// OutOfOrder counts stored events ingested before an event of the same
	// symbol stored ahead of them; Duplicates events stored more than once;
	// Unknown stored events the tap did not see ingested; Missing ingested
	// events never stored.
	OutOfOrder int `json:"out_of_order"`
	Duplicates int `json:"duplicates"`
	Unknown    int `json:"unknown"`
	Missing    int `json:"missing"`
	// Example describes the first event out of order.
	Example string `json:"example,omitempty"`
}

// Intact reports whether the check found nothing wrong.
func (o ScaleOrder) Intact() bool {
	return o.Stored > 0 && o.OutOfOrder == 0 && o.Duplicates == 0 && o.Unknown == 0 && o.Missing == 0
}

func (o ScaleOrder) String() string {
	s := fmt.Sprintf("%s events ingested, %s stored over %d symbols: %s out of order, %s stored twice, %s stored unseen, %s missing",
		thousands(float64(o.Ingested)), thousands(float64(o.Stored)), o.Symbols, thousands(float64(o.OutOfOrder)),
		thousands(float64(o.Duplicates)), thousands(float64(o.Unknown)), thousands(float64(o.Missing)))
	if o.Example != "" {
		s += " (first: " + o.Example + ")"
	}
	return s
}

func newScaleCheck() *scaleCheck {
	return &scaleCheck{marks: map[string]ingestMark{}, last: map[string]uint64{}, stored: map[string]bool{}, first: map[int]int64{},
		wait: map[int]int64{}}
}

// ingested records event id seen in a frame of partition at time at. A
// frame seen again (a publish the gateway retried) keeps its first
// position.
func (c *scaleCheck) ingested(id string, partition int, at int64) {
	if _, ok := c.marks[id]; ok {
		return
	}
	c.marks[id] = ingestMark{pos: c.next, at: at, partition: partition}
	c.next++
}

// killed records when the worker was killed, and until when the load
// went on after it.
func (c *scaleCheck) killed(at, until int64) { c.kill, c.until = at, until }

// storedEvent takes the enriched stream's next event, in stream order:
// its id, its symbol and the time the stream stored it.
func (c *scaleCheck) storedEvent(id, symbol string, at int64) {
	o := &c.order
	o.Stored++
	if c.stored[id] {
		o.Duplicates++
		return
	}
	c.stored[id] = true
	m, ok := c.marks[id]
	if !ok {
		o.Unknown++
		return
	}
	if c.kill > 0 && at > c.kill {
		if _, ok := c.first[m.partition]; !ok {
			c.first[m.partition] = at
		}
		if m.at < c.kill {
			c.recovered = max(c.recovered, at)
		}
		if m.at < c.until {
			c.wait[m.partition] = max(c.wait[m.partition], at-max(m.at, c.kill))
		}
	}
	last, seen := c.last[symbol]
	switch {
	case !seen:
		c.last[symbol] = m.pos
	case m.pos < last:
		if o.OutOfOrder == 0 {
			o.Example = fmt.Sprintf("%s: event %s, ingested %d events before one stored ahead of it", symbol, id, last-m.pos)
		}
		o.OutOfOrder++
	default:
		c.last[symbol] = m.pos
	}
}

// result finishes the order check.
func (c *scaleCheck) result() ScaleOrder {
	o := c.order
	o.Ingested, o.Symbols = len(c.marks), len(c.last)
	for id := range c.marks {
		if !c.stored[id] {
			o.Missing++
		}
	}
	return o
}

// ScaleFailover is what a kill -9 of one worker of three cost the
// partitions.
type ScaleFailover struct {
	Killed     string        `json:"killed"`
	Partitions int           `json:"partitions"`
	AckWait    time.Duration `json:"ack_wait_ns"`
	// Stalls is, per partition, the time from the kill to the partition's
	// first event stored after it; a partition with none after it is left
	// out and counted in Silent. MaxStall is the longest.
	Stalls   []time.Duration `json:"stalls_ns"`
	MaxStall time.Duration   `json:"max_stall_ns"`
	Silent   int             `json:"silent"`
	// Waits is, per partition, the longest any of its events waited after
	// the kill, from the later of its ingest and the kill to its store,
	// over the events ingested until the load ended (a partition may store
	// a few events right after the kill and only then stall); MaxWait the
	// longest. Unlike a gap between stores, a wait is not lengthened by a
	// lull in what the gateway admits.
	Waits   []time.Duration `json:"waits_ns"`
	MaxWait time.Duration   `json:"max_wait_ns"`
	// Recovered is the time from the kill until the last event ingested
	// before it was stored: the killed worker's in-flight batch, delivered
	// again once its AckWait passed.
	Recovered time.Duration `json:"recovered_ns"`
}

// failover computes the stalls of partitions 0..partitions-1 after the
// kill recorded with [scaleCheck.killed].
func (c *scaleCheck) failover(partitions int) ScaleFailover {
	f := ScaleFailover{Partitions: partitions}
	if c.kill == 0 {
		return f
	}
	for p := range partitions {
		at, ok := c.first[p]
		if !ok {
			f.Silent++
			continue
		}
		d := time.Duration(at - c.kill)
		f.Stalls = append(f.Stalls, d)
		f.MaxStall = max(f.MaxStall, d)
		w := time.Duration(c.wait[p])
		f.Waits = append(f.Waits, w)
		f.MaxWait = max(f.MaxWait, w)
	}
	if c.recovered > 0 {
		f.Recovered = time.Duration(c.recovered - c.kill)
	}
	return f
}

// String describes the failover in one line.
func (f ScaleFailover) String() string {
	long := 0
	for _, d := range f.Waits {
		if d > time.Second {
			long++
		}
	}
	s := fmt.Sprintf("kill -9 of %s, %s (--ack-wait %v): the longest a partition waited for its next stored event %s, "+
		"the longest an event of a partition waited after it %s (%s over 1 s); "+
		"every event ingested before the kill stored %s after it",
		f.Killed, plural(f.Partitions, "partition"), f.AckWait, ms(f.MaxStall), ms(f.MaxWait), plural(long, "partition"), ms(f.Recovered))
	if f.Silent > 0 {
		s += fmt.Sprintf("; %s stored nothing after the kill", plural(f.Silent, "partition"))
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/1e6) }

// linearRatio is the N-worker rate over N times the 1-worker rate; 0 when
// either is unknown.
func linearRatio(rate float64, workers int, single float64) float64 {
	if single <= 0 || workers <= 0 {
		return 0
	}
	return rate / (float64(workers) * single)
}
