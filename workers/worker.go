package workers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// Worker is one member of a worker group: it consumes the group's ingest
// subjects through NATS queue subscriptions and runs every batch through the
// pipeline on a fixed pool of goroutines. Build it with [New], then
// [Worker.Start]; stop it with [Worker.Shutdown].
//
// Locks: Worker.mu guards the lifecycle state; Worker.gate lets the queue be
// closed while subscription callbacks may still be running. They are never
// held together. Processing takes no lock of its own (the NATS connection
// takes its own when publishing).
type Worker struct {
	nc   *nats.Conn
	opts Options
	pl   *pipeline
	subs []*kindSub

	gate     sync.RWMutex // read-held by callbacks while they deliver
	gateShut bool         // set, with queue closed, under gate
	queue    chan delivery
	abort    chan struct{} // closed when a Shutdown's context ends
	aborted  atomic.Bool
	ctx      context.Context // given to stages; cancelled on abort
	cancel   context.CancelFunc
	pool     sync.WaitGroup

	load    *load
	origins *origins
	dur     *durable // nil without durable kinds

	statsStop chan struct{}
	statsDone chan struct{}
	dropped   atomic.Uint64

	mu       sync.Mutex
	state    int
	finished chan struct{} // closed when Shutdown has completed
	finalErr error         // Shutdown's result, set before finished closes
}

// Worker states.
const (
	stateNew = iota
	stateStarted
	stateStopped
)

// kindSub is the ingest subscription of one kind.
type kindSub struct {
	ks      *kindState
	subject string
	sub     *nats.Subscription
	done    chan struct{} // closed once the subscription delivered its last message
	dropped int           // last Dropped() read; only the stats goroutine touches it
}

// delivery is one batch handed from a subscription to the pool.
type delivery struct {
	msg    *nats.Msg
	ks     *kindState
	n      int64  // events in the frame
	seq    uint64 // the batch's HeaderBatch sequence, when hasSeq
	hasSeq bool
	bd     *durableDelivery // set for a durable batch
	recv   time.Time        // when the subscription handed it over
}

// New checks opts, fills in the defaults and builds a Worker, creating its
// metrics. It does not touch NATS: see [Worker.Start].
func New(opts Options) (*Worker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	opts.Kinds = append([]schemas.Kind(nil), opts.Kinds...)
	opts.Stages = append([]Stage(nil), opts.Stages...)
	ctx, cancel := context.WithCancel(context.Background())
	w := &Worker{
		nc:        opts.Conn,
		opts:      opts,
		pl:        newPipeline(&opts),
		queue:     make(chan delivery, opts.QueueLen),
		abort:     make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		statsStop: make(chan struct{}),
		statsDone: make(chan struct{}),
		finished:  make(chan struct{}),
		load:      newLoad(),
		origins:   newOrigins(opts.Conn, DefaultDoneLinger),
	}
	for _, k := range opts.Kinds {
		if opts.Delivery.Of(k) == bus.ModeDurable {
			continue // consumed by startDurable
		}
		w.subs = append(w.subs, &kindSub{
			ks:      w.pl.kinds[k],
			subject: opts.Subjects.Ingest(k),
			done:    make(chan struct{}),
		})
	}
	return w, nil
}

// Start subscribes to the ingest subject of every kind of the group, with
// the group as the queue group, and starts the processing goroutines. It
// does not block; it returns once the NATS server has the subscriptions, so
// a batch published after Start returns reaches the group. On error nothing
// is left subscribed or running, and the worker cannot be started again.
func (w *Worker) Start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case stateStarted:
		return ErrStarted
	case stateStopped:
		return ErrShutdown
	}
	w.state = stateStarted
	// The durable consumer starts after the pool; the streams are applied
	// before either, so that a refused stream leaves nothing running.
	err := w.prepareDurable()
	for range w.opts.Concurrency {
		w.pool.Add(1)
		p := newProcessor(w.ctx, w.pl, w.nc)
		if w.dur != nil {
			p.dur, p.progress = w.dur, newProgress(w.opts.AckWait, w.dur.m.inProgress)
		}
		go w.run(p)
	}
	go w.pollStats()
	go w.origins.run()
	if err == nil {
		err = w.subscribe()
	}
	if err != nil {
		w.state = stateStopped
		close(w.load.stopped)
		close(w.load.stop)
		w.abortNow()
		w.finish(err)
		return err
	}
	// Reports start once the subscriptions exist: a report means "send me
	// work", and gateways revive a group on it.
	if w.opts.ReportInterval > 0 {
		go w.report()
	} else {
		close(w.load.stopped)
		close(w.load.stop)
	}
	return nil
}

func (w *Worker) subscribe() error {
	for _, s := range w.subs {
		sub, err := w.nc.QueueSubscribe(s.subject, w.opts.Group, w.deliverer(s.ks))
		if err != nil {
			return fmt.Errorf("subscribing to %s: %w", s.subject, err)
		}
		s.sub = sub
		done := s.done
		sub.SetClosedHandler(func(string) { close(done) })
		if err := sub.SetPendingLimits(w.opts.PendingMsgs, w.opts.PendingBytes); err != nil {
			return fmt.Errorf("setting pending limits on %s: %w", s.subject, err)
		}
	}
	if w.dur != nil {
		sub, err := w.dur.pull.Consume(w.durableDeliverer)
		if err != nil {
			return err
		}
		w.dur.sub = sub
	}
	if err := w.nc.Flush(); err != nil {
		return fmt.Errorf("confirming subscriptions: %w", err)
	}
	return nil
}

// deliverer returns the subscription callback of ks: it hands each batch to
// the pool, waiting while the queue is full (the batches behind it wait in
// the subscription's pending buffer, up to its limits).
func (w *Worker) deliverer(ks *kindState) nats.MsgHandler {
	return func(m *nats.Msg) {
		w.gate.RLock()
		defer w.gate.RUnlock()
		if w.gateShut {
			w.pl.m.abandoned.Inc()
			return
		}
		recv := time.Now()
		w.pl.m.observeTransit(m.Header, recv)
		n := frameCount(m.Data)
		seq, hasSeq := batchSeq(m)
		w.load.received(n, len(m.Data))
		w.origins.received(m.Reply, n)
		select {
		case w.queue <- delivery{m, ks, n, seq, hasSeq, nil, recv}:
		case <-w.abort:
			w.load.abandoned(n, len(m.Data))
			w.origins.finished(m.Reply, seq, hasSeq, n)
			w.pl.m.abandoned.Inc()
		}
	}
}

// run is one processing goroutine.
func (w *Worker) run(p *processor) {
	defer w.pool.Done()
	for d := range w.queue {
		if w.aborted.Load() {
			w.load.abandoned(d.n, len(d.msg.Data))
			if d.bd != nil {
				_ = d.bd.Nak(0) // another member takes it at once
				<-w.dur.slots
			} else {
				w.origins.finished(d.msg.Reply, d.seq, d.hasSeq, d.n)
			}
			w.pl.m.abandoned.Inc()
			continue
		}
		w.load.started(d.n, len(d.msg.Data))
		w.pl.m.observe(stageQueue, d.recv, time.Now())
		if d.bd != nil {
			w.load.finished(d.n, p.handleDurable(d.msg, d.ks, d.bd))
			<-w.dur.slots
			continue
		}
		w.load.finished(d.n, p.handle(d.msg, d.ks))
		w.origins.finished(d.msg.Reply, d.seq, d.hasSeq, d.n)
	}
}

// Shutdown stops the worker gracefully, in this order:
//
//  1. It drains the ingest subscriptions: the NATS server stops sending
//     batches to this worker (the other members of the group get them), and
//     the batches the NATS client already holds still reach the pool.
//  2. It waits until every subscription has handed over its last batch,
//     then until the pool has processed every batch received, publishing
//     their enriched events, dead letters and replies.
//  3. It flushes the connection, so that the server has everything
//     published, and returns. It does not close the connection.
//
// If ctx ends first, Shutdown unsubscribes at once, makes the pool skip the
// batches not yet started (counted in sluice_worker_abandoned_batches_total),
// cancels the context given to stages and returns ctx.Err(); the goroutines
// exit when their current batch is done. Callers waiting for results of the
// skipped batches time out.
//
// Shutdown of a worker never started returns nil; after a failed Start it
// returns Start's error. A second call waits for the first to complete (or
// its own ctx to end) and returns the same result.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	state := w.state
	w.state = stateStopped
	w.mu.Unlock()
	switch state {
	case stateNew:
		w.cancel()
		w.finishOnce(nil)
		return nil
	case stateStopped:
		select {
		case <-w.finished:
			return w.finalErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	if w.dur != nil {
		close(w.dur.stopping) // a store retried in place gives its batch up
	}
	w.stopStats()
	w.stopReports()
	var errs []error
	for _, s := range w.subs {
		if err := s.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, fmt.Errorf("draining %s: %w", s.subject, err))
		}
	}
	if w.dur != nil && w.dur.sub != nil {
		// Stops pulling; the batches the client holds still reach the
		// pool (waitSubs waits for the last one).
		go func() { _ = w.dur.sub.Drain(context.Background()) }()
	}
	drained := make(chan struct{})
	go func() {
		w.waitSubs()
		w.closeQueue()
		w.pool.Wait()
		w.origins.close() // the last done frames, before the flush
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		w.abortNow()
		go func() {
			<-drained
			w.finishOnce(ctx.Err())
		}()
		return ctx.Err()
	}
	if err := w.flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("flushing: %w", err))
	}
	w.cancel()
	err := errors.Join(errs...)
	w.finishOnce(err)
	return err
}

// flush waits for the server to have everything published, within ctx when
// it has a deadline.
func (w *Worker) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); ok {
		return w.nc.FlushWithContext(ctx)
	}
	return w.nc.Flush()
}

// abortNow stops everything at once: no more deliveries, no more batches
// started.
func (w *Worker) abortNow() {
	w.aborted.Store(true)
	close(w.abort)
	w.cancel()
	for _, s := range w.subs {
		if s.sub != nil {
			_ = s.sub.Unsubscribe() // already gone if the connection closed
		}
	}
	if w.dur != nil && w.dur.sub != nil {
		w.dur.sub.Stop() // what it held is delivered again after AckWait
	}
}

// finish completes an aborted Start: it waits for the subscriptions and the
// pool to end and records err.
func (w *Worker) finish(err error) {
	w.stopStats()
	w.waitSubs()
	w.closeQueue()
	w.pool.Wait()
	w.origins.close()
	w.finishOnce(err)
}

// waitSubs waits until every subscription has ended. A drained one ends
// once it has delivered every message it held; the closed handler says so at
// once, and polling IsValid covers a subscription closed before the handler
// was set (the gate then covers a callback still running).
func (w *Worker) waitSubs() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	if w.dur != nil && w.dur.sub != nil {
		<-w.dur.sub.Closed()
	}
	for _, s := range w.subs {
		for open := s.sub != nil; open; {
			select {
			case <-s.done:
				open = false
			case <-t.C:
				open = s.sub.IsValid()
			}
		}
	}
}

// closeQueue closes the queue once no callback is delivering, and makes
// later callbacks drop their message.
func (w *Worker) closeQueue() {
	w.gate.Lock()
	defer w.gate.Unlock()
	w.gateShut = true
	close(w.queue)
}

func (w *Worker) finishOnce(err error) {
	w.finalErr = err
	close(w.finished)
}
