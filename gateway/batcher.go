package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/schemas"
)

// ErrBatcherFull means the batcher's memory bound (BatchOptions.MaxPendingBytes)
// would be exceeded: the request is refused with 503 rather than buffered.
var ErrBatcherFull = errors.New("batcher memory bound reached")

// flush reasons, as counted in sluice_gateway_batches_flushed_total.
const (
	flushCount = iota
	flushBytes
	flushLinger
	flushIdle
	flushShutdown
	numFlushReasons
)

var flushReasonNames = [numFlushReasons]string{"count", "bytes", "linger", "idle", "shutdown"}

// batch is one frame being filled, then published. Requests whose events it
// holds wait on done and then read err.
type batch struct {
	buf    []byte
	n      int
	gen    uint64
	reason uint8 // a flush reason; beside wait, so that sent keeps the struct in its size class
	wait   bool  // an event in it waits for a result: the frame carries Sluice-Reply
	sent   int64 // when it was handed to NATS, Unix ns (its Sluice-Sent header); read after done
	done   chan struct{}
	err    error
	calls  []batchWaiter // the fast edge's requests, told when the batch is done
	tr     *batchTrace   // set when a traced request has events in it
}

// batchWaiter is a request that does not wait on batch.done: the batch
// calls batchDone once it is published (or refused), with the time it was
// handed to NATS (Unix ns; 0 if it never was), from the goroutine
// that finished it.
type batchWaiter interface {
	batchDone(err error, sent, done int64)
	// touch counts one more batch the request waits for; called under
	// the batcher's lock, before any batchDone.
	touch()
	// expect says that the request waits for the results of corr too;
	// called before its events are added.
	expect(corr uint64)
}

// batcher micro-batches the encoded events of one kind onto its ingest
// subject. A batch is flushed at MaxEvents, at MaxBytes, after Linger, or at
// once when no request of this kind is between [batcher.enter] and its
// [batcher.add] and requests arrive further apart than Linger (nobody is
// about to join the batch, so waiting would only add latency; see
// [batcher.idleFlushLocked]). Under light load batches are therefore small
// and fast; under heavy load they wait for the linger or fill up by count
// or bytes.
//
// The lock guards only the current batch; encoding happens before it is
// taken and publishing after it is released.
//
// The batcher turns events into frames; its [framePublisher] hands them to
// NATS. It keeps its group's depth ([admit.Group]) for the events it
// handles, in the steps of depth.go alone.
type batcher struct {
	subject string
	inbox   string
	opts    BatchOptions
	pub     framePublisher // core or durable: the batcher holds no connection
	m       *gatewayMetrics
	group   *admit.Group  // the group's load: events held here
	out     outstanding   // core: batches sent, not yet reported done by a worker
	dur     *durablePub   // durable: pub, for admission's backpressure check; nil in core mode
	msgID   string        // durable: the Nats-Msg-Id prefix, "<publisher id>.<type>.[<partition>.]"
	unacked *atomic.Int64 // durable: events published, not yet acknowledged

	tracer   trace.Tracer // nil: tracing off
	spanName string

	// The counts above and below are shared by the batchers of one
	// type's partitions (newPartBatcher): a request enters, reserves and
	// is counted once for its type, whichever partitions its events go to.
	active  *atomic.Int64 // requests between enter and add
	pending *atomic.Int64 // bytes reserved, not yet published
	// siblings are the other partitions' batchers of the type (nil when
	// it has one): leave flushes them too.
	siblings []*batcher
	// typeArrivals, for a partition's batcher, is the arrival rate of the
	// type's requests, which decides the idle flush: a partition sees a
	// fraction of them, and its own rate would call it idle while the type
	// is busy (nil: the batcher's own gapEWMA).
	typeArrivals *arrivals

	// linger is how long a batch waits to fill: opts.Linger, longer for a
	// partition's batcher (newPartitioned). The idle flush keeps
	// opts.Linger.
	linger time.Duration

	mu       sync.Mutex
	lastAdd  int64 // unix ns of the last request's arrival
	gapEWMA  int64 // smoothed ns between arrivals: the arrival rate
	cur      *batch
	opened   int64 // unix ns the request that opened cur arrived
	gen      uint64
	timer    *time.Timer
	timerGen uint64
	closed   bool

	// ordered (a partition's batcher) publishes its batches in the order
	// they were filled, gen by gen, whichever goroutine publishes each: a
	// batch taken out under mu is published after mu is released, and a
	// later one taken by another goroutine could otherwise reach NATS
	// first, storing a symbol's later events before its earlier ones.
	// published is the gen of the last batch handed to pub.
	ordered   bool
	pubMu     sync.Mutex
	pubCond   sync.Cond
	published uint64

	bufs sync.Pool
}

func newBatcher(pub framePublisher, subject, inbox string, opts BatchOptions, m *gatewayMetrics) *batcher {
	// Start quiet: a lone request goes out at once. The average comes down
	// to the real gap over the first two hundred or so requests (it keeps
	// 7/8 of itself per request), so a new gateway batches only once it has
	// seen traffic.
	b := &batcher{subject: subject, inbox: inbox, opts: opts, pub: pub, m: m, gapEWMA: 1 << 62, linger: opts.Linger,
		unacked: new(atomic.Int64), active: new(atomic.Int64), pending: new(atomic.Int64)}
	b.pubCond.L = &b.pubMu
	b.timer = time.AfterFunc(time.Hour, b.onTimer)
	b.timer.Stop()
	return b
}

// newPartBatcher returns a batcher of head's type for another partition,
// on subject: its own batch, timer and arrival rate, head's counts (see
// [partitioned]).
func newPartBatcher(head *batcher, subject string) *batcher {
	b := newBatcher(head.pub, subject, head.inbox, head.opts, head.m)
	b.group, b.dur, b.tracer = head.group, head.dur, head.tracer
	b.unacked, b.active, b.pending = head.unacked, head.active, head.pending
	return b
}

// enter marks a request of this kind as on its way to add.
func (b *batcher) enter() { b.active.Add(1) }

// leave undoes enter for a request that will not call add.
func (b *batcher) leave() {
	if b.active.Add(-1) == 0 {
		b.flushIdle()
		for _, o := range b.siblings {
			o.flushIdle()
		}
	}
}

// frameHeaderRoom is kept free under NATS' max_payload for a batch
// frame's headers (Sluice-Frame, Sluice-Count and Sluice-Batch take under
// 100 bytes), which NATS counts in the payload.
const frameHeaderRoom = 256

// frameOverhead is the batch frame's own bytes around its events: the
// MessagePack array header with a patchable count.
const frameOverhead = 5

// frameLimit returns the size past which a batch is flushed before taking
// another event: MaxBytes, or less when the NATS server's max_payload is
// smaller (the gateway may have connected, or reconnected, to a server
// with a smaller limit than the options were checked against).
func (b *batcher) frameLimit() int {
	if mp := b.pub.maxPayload(); mp > 0 {
		return min(b.opts.MaxBytes, mp-frameHeaderRoom)
	}
	return b.opts.MaxBytes
}

// maxEvent returns the largest encoded event that fits a batch frame on its
// own, and so in one NATS message: a larger one can never be published.
// Before the connection has met a server (max_payload unknown, with
// RetryOnFailedConnect), the bound is MaxBytes, which the options kept
// under max_payload if they could check it.
func (b *batcher) maxEvent() int {
	if mp := b.pub.maxPayload(); mp > 0 {
		return mp - frameHeaderRoom - frameOverhead
	}
	return b.opts.MaxBytes - frameOverhead
}

// reserve claims n bytes of the memory bound; release gives them back.
func (b *batcher) reserve(n int) error {
	if b.pending.Add(int64(n)) > b.opts.MaxPendingBytes {
		b.pending.Add(-int64(n))
		return ErrBatcherFull
	}
	return nil
}

// add appends the encoded events (enc, split at the offsets in ends) to the
// current batch, flushing batches that fill up, and returns the batches that
// hold the events in touched (reused). arrived is when the request arrived
// (unix ns; the handler has read the clock already); wait says that the
// events wait for results. The caller reserved len(enc) bytes and called
// enter; add calls leave's counterpart itself. The events count in the
// group's depth from here: what has been received and decoded, never what
// a request only declares, so a client that stalls mid-upload holds
// nothing of the group's capacity.
// Every event is at most [batcher.maxEvent] bytes: a batch frame never
// grows past max_payload.
func (b *batcher) add(enc []byte, ends []int, arrived int64, wait bool, touched []*batch, call batchWaiter) []*batch {
	return b.addTraced(enc, ends, arrived, wait, touched, call, nil)
}

// addTraced is add for a request whose span context sc is sampled (nil
// otherwise): the batches holding its events link to its span.
func (b *batcher) addTraced(enc []byte, ends []int, arrived int64, wait bool, touched []*batch, call batchWaiter, sc *trace.SpanContext) []*batch {
	var full [8]*batch
	flush := full[:0]
	flushAt := b.frameLimit()
	b.held(len(ends))
	b.mu.Lock()
	if b.cur != nil && b.linger > 0 && arrived-b.opened >= int64(b.linger) {
		// Its linger is over and the timer has not fired yet (a busy
		// process runs timers late): it goes out now, not later still.
		b.cur.reason = flushLinger
		flush = append(flush, b.cur)
		b.cur = nil
	}
	start := 0
	for _, end := range ends {
		ev := enc[start:end]
		start = end
		if b.cur != nil && b.cur.n > 0 && len(b.cur.buf)+len(ev) > flushAt {
			b.cur.reason = flushBytes
			flush = append(flush, b.cur)
			b.cur = nil
		}
		if b.cur == nil {
			b.cur = b.newBatchLocked()
			b.opened = arrived
		}
		cur := b.cur
		cur.buf = append(cur.buf, ev...)
		cur.n++
		cur.wait = cur.wait || wait
		if len(touched) == 0 || touched[len(touched)-1] != cur {
			touched = append(touched, cur)
			if sc != nil {
				linkLocked(cur, sc)
			}
			if call != nil {
				call.touch()
				cur.calls = append(cur.calls, call)
			}
		}
		if cur.n >= b.opts.MaxEvents {
			cur.reason = flushCount
			flush = append(flush, cur)
			b.cur = nil
		}
	}
	var idle *batch
	b.noteArrivalLocked(arrived)
	last := b.active.Add(-1) == 0
	if last && b.cur != nil && b.idleFlushLocked() {
		idle, b.cur = b.cur, nil
		idle.reason = flushIdle
	}
	b.mu.Unlock()
	for _, f := range flush {
		b.publish(f)
	}
	if idle != nil {
		b.publish(idle)
	}
	if last && len(b.siblings) > 0 && b.idleFlushLocked() {
		// The type is idle: the other partitions' batches, which requests
		// added while this one was in flight left for it, go out too, as
		// they would have in the type's one batch. (A batcher with
		// siblings reads the type's arrivals, atomically: no lock.)
		for _, o := range b.siblings {
			o.flushIdle()
		}
	}
	return touched
}

func (b *batcher) newBatchLocked() *batch {
	b.gen++
	buf, _ := b.bufs.Get().([]byte)
	nb := &batch{buf: schemas.BatchFrameHeader(buf[:0]), gen: b.gen, done: make(chan struct{})}
	if b.linger > 0 {
		b.timerGen = b.gen
		b.timer.Reset(b.linger)
	}
	return nb
}

func (b *batcher) onTimer() {
	b.mu.Lock()
	var f *batch
	if b.cur != nil && b.cur.gen == b.timerGen {
		f, b.cur = b.cur, nil
		f.reason = flushLinger
	}
	b.mu.Unlock()
	if f != nil {
		b.publish(f)
	}
}

// noteArrivalLocked updates the smoothed gap between requests. Requests
// reach the lock slightly out of order: a negative gap counts as none.
func (b *batcher) noteArrivalLocked(arrived int64) {
	if b.lastAdd != 0 {
		gap := max(arrived-b.lastAdd, 0)
		b.gapEWMA += (gap - b.gapEWMA) / 8
	}
	b.lastAdd = max(b.lastAdd, arrived)
}

// idleFlushLocked reports whether a batch nobody else is about to join
// should go out now: when requests arrive further apart than the linger
// time, waiting would only add latency; when they arrive closer together,
// the next one is likely within the linger and the batch waits for it (the
// linger timer bounds the wait), so under load batches fill up instead of
// going out one event at a time. Measured alternatives are in
// benchmarks/README.md ("Batching policy").
func (b *batcher) idleFlushLocked() bool {
	if b.typeArrivals != nil {
		return b.typeArrivals.gap() >= int64(b.opts.Linger)
	}
	return b.gapEWMA >= int64(b.opts.Linger)
}

func (b *batcher) flushIdle() {
	b.mu.Lock()
	f := b.cur
	if b.active.Load() != 0 || !b.idleFlushLocked() {
		f = nil
	}
	if f != nil {
		b.cur = nil
		f.reason = flushIdle
	}
	b.mu.Unlock()
	if f != nil {
		b.publish(f)
	}
}

// flushAll publishes the current batch whatever its size (shutdown).
func (b *batcher) flushAll() {
	b.mu.Lock()
	f := b.cur
	b.cur = nil
	b.timer.Stop()
	b.mu.Unlock()
	if f != nil {
		f.reason = flushShutdown
		b.publish(f)
	}
}

// publish finishes a batch frame and hands it to the kind's publisher,
// which wakes the requests waiting on it once NATS has it (durable: once
// the stream has stored it).
func (b *batcher) publish(f *batch) {
	schemas.FinishBatchFrame(f.buf, f.n)
	if !b.ordered {
		b.pub.publish(b, f)
		return
	}
	// Every batch is published once (none is dropped from cur), so the
	// one before f comes.
	b.pubMu.Lock()
	for b.published != f.gen-1 {
		b.pubCond.Wait()
	}
	b.pubMu.Unlock()
	b.pub.publish(b, f) // the next waits for published: the publishes are in gen order
	b.pubMu.Lock()
	b.published = f.gen
	b.pubCond.Broadcast()
	b.pubMu.Unlock()
}

// finish releases a published (or refused) batch's bytes and buffer, counts
// it and wakes its requests.
func (b *batcher) finish(f *batch) {
	size := len(f.buf) - 5
	b.pending.Add(-int64(size))
	b.m.batchFlushed(int(f.reason), f.n, len(f.buf), f.err)
	endBatchSpan(f)
	if cap(f.buf) <= 4*b.opts.MaxBytes {
		b.bufs.Put(f.buf[:0]) //nolint:staticcheck // a slice header per batch is fine
	}
	f.buf = nil
	close(f.done)
	var done int64
	if len(f.calls) > 0 {
		done = now() // once for the batch's requests, not once each
	}
	for i, c := range f.calls {
		c.batchDone(f.err, f.sent, done)
		f.calls[i] = nil
	}
}

// oversized returns the 413 of the first event (split at ends) larger than
// limit bytes, the most a batch frame holds for one event, or nil: such an
// event can never be published, and nothing of its request is.
func oversized(ends []int, limit int, single bool) *problem {
	start := 0
	for i, end := range ends {
		size := end - start
		start = end
		if size <= limit {
			continue
		}
		what := "the event"
		if !single {
			what = "event " + strconv.Itoa(i)
		}
		return &problem{Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("%s is %d bytes as MessagePack, more than the %d bytes that one event may take in a batch frame (NATS max_payload less room for the frame and its headers); nothing was published",
				what, size, limit)}
	}
	return nil
}
