package workers

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// Headers of a batch that a durable worker dead-letters whole.
const (
	// HeaderDelivered holds how many times the stream had delivered the
	// batch when the worker gave up on it.
	HeaderDelivered = "Sluice-Delivered"
	// HeaderError holds the error of the batch's last attempt.
	HeaderError = "Sluice-Error"
)

// The Sluice-Reason values of a batch dead-lettered whole (an event's dead
// letter carries its first validation code instead).
const (
	// ReasonStageFailed: a stage failed the batch on its last delivery.
	ReasonStageFailed = "stage_failed"
	// ReasonPublishFailed: the stream refused the batch's enriched events
	// or dead letters on its last delivery (a refusal a retry cannot mend,
	// such as a message over the stream's maximum size; a transient
	// failure is retried in place instead, see storeOutcomes).
	ReasonPublishFailed = "publish_failed"
	// ReasonUndecodable: the batch frame cannot be read at all; it is
	// dead-lettered on its first delivery, since no retry can mend it.
	ReasonUndecodable = "undecodable"
)

// batchReasons are the reasons with a sluice_worker_dead_lettered_batches
// series.
var batchReasons = [...]string{ReasonStageFailed, ReasonPublishFailed, ReasonUndecodable}

// startTimeout bounds what Start waits for JetStream: the streams applied
// and the consumer created (Apply retries while a cluster elects leaders).
const startTimeout = 30 * time.Second

// maxErrorHeader bounds the HeaderError value.
const maxErrorHeader = 512

// durable is the durable side of a worker: its pull consumer and its
// JetStream publisher.
type durable struct {
	js    jetstream.JetStream
	names [2]string             // the enriched and dead-letter streams
	kinds map[string]*kindState // by ingest subject
	pub   *bus.Durable
	pull  bus.Pulls // the group's consumer, or its partitions' ones
	sub   *bus.Subscription
	m     durableMetrics
	// stopping is closed when Shutdown begins: a store retried in place
	// gives up then, and its batch is nakked for another worker.
	stopping chan struct{}
	// slots bound the batches handed to the pool (queued or running) to
	// the pool's size: the consumer callback waits for one, so the client
	// pulls no further ahead than its buffer.
	slots chan struct{}
}

// durableMetrics are the series of the durable side.
type durableMetrics struct {
	acks, naks, redeliveries, inProgress, duplicates *metrics.Counter
	storeRetries                                     *metrics.Counter
	deadBatches                                      [len(batchReasons)]*metrics.Counter
	pending, ackPending                              *metrics.Gauge
}

func newDurableMetrics(s *metrics.Set, group string) durableMetrics {
	g := `{group="` + group + `"}`
	dm := durableMetrics{
		acks:         s.GetOrCreateCounter("sluice_worker_acks_total" + g),
		naks:         s.GetOrCreateCounter("sluice_worker_naks_total" + g),
		redeliveries: s.GetOrCreateCounter("sluice_worker_redeliveries_total" + g),
		inProgress:   s.GetOrCreateCounter("sluice_worker_in_progress_total" + g),
		duplicates:   s.GetOrCreateCounter("sluice_worker_duplicates_total" + g),
		storeRetries: s.GetOrCreateCounter("sluice_worker_store_retries_total" + g),
		pending:      s.GetOrCreateGauge("sluice_worker_consumer_pending"+g, nil),
		ackPending:   s.GetOrCreateGauge("sluice_worker_consumer_ack_pending"+g, nil),
	}
	for i, r := range batchReasons {
		dm.deadBatches[i] = s.GetOrCreateCounter(`sluice_worker_dead_lettered_batches_total{group="` + group + `",reason="` + r + `"}`)
	}
	return dm
}

// prepareDurable applies the streams and creates the group's consumers
// and the publisher of the durable kinds (consuming starts in subscribe).
// It does nothing without any.
func (w *Worker) prepareDurable() error {
	var subjects []string
	parts := max(w.opts.Streams.Partitions, 1)
	kinds := make(map[string]*kindState)
	for _, k := range w.opts.Kinds {
		if w.opts.Delivery.Of(k) == bus.ModeDurable {
			s := w.opts.Subjects.Ingest(k)
			subjects = append(subjects, s)
			kinds[s] = w.pl.kinds[k]
			for p := 0; parts > 1 && p < parts; p++ {
				kinds[w.opts.Subjects.IngestPartition(k, p)] = w.pl.kinds[k]
			}
		}
	}
	js, err := jetstream.New(w.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if len(subjects) == 0 {
		return w.checkCaptured(js)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	so := w.opts.Streams
	so.Delivery = w.opts.Delivery
	applied, err := bus.Apply(ctx, js, w.opts.Subjects, so)
	if err != nil {
		return fmt.Errorf("applying the streams: %w", err)
	}
	for _, a := range applied {
		w.opts.Logger.Info("stream", "stream", a.Stream, "action", string(a.Action), "changed", a.Changed, "added", a.Added)
	}
	pub, err := bus.NewDurable(w.nc, bus.DurableOptions{})
	if err != nil {
		return err
	}
	d := &durable{stopping: make(chan struct{}), js: js, names: [2]string{bus.EnrichedStream(w.opts.Subjects), bus.DLQStream(w.opts.Subjects)}, kinds: kinds, pub: pub, m: newDurableMetrics(w.opts.Metrics, w.opts.Group),
		slots: make(chan struct{}, w.opts.Concurrency)}
	if d.pull, err = w.consumers(ctx, js, subjects, parts); err != nil {
		return err
	}
	w.dur = d
	return nil
}

// consumers creates the group's consumers on the ingest stream: one over
// subjects (the durable kinds' ingest subjects) when parts is 1; else one
// per partition ([bus.NewPartitions]) and, while the stream still holds
// some of subjects themselves (it was upgraded from one partition), the
// unpartitioned one on those too, so that the batches stored there before
// the upgrade are processed (in no particular order) rather than left.
func (w *Worker) consumers(ctx context.Context, js jetstream.JetStream, subjects []string, parts int) (bus.Pulls, error) {
	var consumeLog logLimiter
	stream := bus.IngestStream(w.opts.Subjects)
	co := bus.ConsumerOptions{
		Group:      w.opts.Group,
		Subjects:   subjects,
		AckWait:    w.opts.AckWait,
		MaxDeliver: w.opts.MaxDeliver,
		// Few batches ahead: the rest wait in the stream, where the
		// consumer's pending count shows them to every gateway, and no
		// batch's AckWait runs out in this worker's queue.
		Buffer: 2 * w.opts.Concurrency,
		OnError: func(err error) {
			if ok, suppressed := consumeLog.allow(); ok {
				w.opts.Logger.Warn("consuming", "group", w.opts.Group, "err", err, "suppressed", suppressed)
			}
		},
	}
	if parts == 1 {
		p, err := bus.NewPull(ctx, js, stream, co)
		return bus.Pulls{p}, err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("looking up stream %q: %w", stream, err)
	}
	var legacy []string
	for _, s := range subjects {
		if slices.Contains(st.CachedInfo().Config.Subjects, s) {
			legacy = append(legacy, s)
		}
	}
	po := co
	// The server hands out one batch per partition at a time anyway.
	po.Buffer = partitionBuffer
	ps, err := bus.NewPartitions(ctx, js, stream, po, parts)
	if err != nil || len(legacy) == 0 {
		return ps, err
	}
	co.Subjects = legacy
	p, err := bus.NewPull(ctx, js, stream, co)
	if err != nil {
		return nil, err
	}
	w.opts.Logger.Info("draining the unpartitioned ingest subjects as well", "group", w.opts.Group, "subjects", legacy)
	return append(ps, p), nil
}

// partitionBuffer is how many batches a worker pulls ahead on each
// partition's consumer: the server delivers one at a time, the second
// request waits on the server for the next.
const partitionBuffer = 2

// coreCheckTimeout bounds the look a worker whose types are all core takes
// at the streams.
const coreCheckTimeout = 2 * time.Second

// checkCaptured fails Start when a stream of the pipeline captures the
// subject of one of the worker's core types ([bus.CapturedError]): its
// batches would be stored and never read. One request per stream; a server
// without JetStream, or one that does not answer in time, does not hold a
// core worker back.
func (w *Worker) checkCaptured(js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(context.Background(), coreCheckTimeout)
	defer cancel()
	s := w.opts.Subjects
	err := bus.CheckCaptured(ctx, js, s, w.opts.Delivery, bus.IngestStream(s), bus.EnrichedStream(s), bus.DLQStream(s))
	var ce *bus.CapturedError
	if errors.As(err, &ce) {
		return err
	}
	if err != nil {
		w.opts.Logger.Warn("could not check the streams", "err", err)
	}
	return nil
}

// CheckStreams reports whether the streams the worker's durable kinds need
// are usable: the group's consumer on the ingest stream answers, and the
// enriched and dead-letter streams exist and, on a cluster, have a leader.
// It asks the server (three requests within ctx); nil without durable
// kinds. For readiness checks.
func (w *Worker) CheckStreams(ctx context.Context) error {
	d := w.dur
	if d == nil {
		return nil
	}
	if _, err := d.pull.Pending(ctx); err != nil {
		return err
	}
	for _, name := range d.names {
		s, err := d.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %q: %w", name, err)
		}
		if c := s.CachedInfo().Cluster; c != nil && c.Leader == "" {
			return fmt.Errorf("stream %q has no leader", name)
		}
	}
	return nil
}

// durableDeliverer hands each durable batch to the pool, as deliverer does
// for core ones.
func (w *Worker) durableDeliverer(bd bus.Delivery) {
	w.gate.RLock()
	defer w.gate.RUnlock()
	d := w.dur
	if w.gateShut {
		w.pl.m.abandoned.Inc()
		_ = bd.Nak(0) // another member takes it at once
		return
	}
	ks := d.kinds[bd.Subject()]
	if ks == nil { // the consumer's filter makes this impossible
		_ = bd.Term("not an ingest subject of group " + w.opts.Group)
		return
	}
	select {
	case d.slots <- struct{}{}: // released by the pool once the batch is settled
	case <-w.abort:
		w.pl.m.abandoned.Inc()
		_ = bd.Nak(0)
		return
	}
	if bd.NumDelivered() > 1 {
		d.m.redeliveries.Inc()
	}
	data := bd.Data()
	n := frameCount(data)
	msg := &nats.Msg{Subject: bd.Subject(), Header: bd.Header(), Data: data, Reply: bd.ReplyTo()}
	w.load.received(n, len(data))
	recv := time.Now()
	w.pl.m.observeTransit(msg.Header, recv)
	select {
	case w.queue <- delivery{msg: msg, ks: ks, n: n, bd: &durableDelivery{Delivery: bd, at: recv}, recv: recv}:
	case <-w.abort:
		<-d.slots
		w.load.abandoned(n, len(data))
		w.pl.m.abandoned.Inc()
		_ = bd.Nak(0)
	}
}

// durableDelivery is a durable batch in the worker's queue.
type durableDelivery struct {
	bus.Delivery
	at time.Time // when the client handed it over
}

// readPending reads the consumer's backlog into lr and the gauges, within
// timeout; on failure lr keeps the last values read.
func (d *durable) readPending(lr *schemas.LoadReport, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p, err := d.pull.Pending(ctx)
	if err != nil {
		return
	}
	lr.ConsumerPending, lr.ConsumerAckPending = int64(min(p.Msgs, math.MaxInt64)), int64(p.AckPending)
	d.m.pending.Set(float64(p.Msgs))
	d.m.ackPending.Set(float64(p.AckPending))
}

// progress sends in-progress acks for the batch a processor is running,
// every half AckWait, so that a slow batch is not delivered again while it
// runs.
type progress struct {
	mu    sync.Mutex
	bd    *durableDelivery
	every time.Duration
	t     *time.Timer
	m     *metrics.Counter
}

func newProgress(ackWait time.Duration, m *metrics.Counter) *progress {
	pr := &progress{every: ackWait / 2, m: m}
	pr.t = time.AfterFunc(time.Hour, pr.fire)
	pr.t.Stop()
	return pr
}

// start watches bd; a batch that waited half its AckWait before it started
// is kept at once.
func (pr *progress) start(bd *durableDelivery) {
	pr.mu.Lock()
	pr.bd = bd
	pr.mu.Unlock()
	wait := pr.every - time.Since(bd.at)
	if wait <= 0 {
		pr.fire()
		return
	}
	pr.t.Reset(wait)
}

func (pr *progress) stop() {
	pr.t.Stop()
	pr.mu.Lock()
	pr.bd = nil
	pr.mu.Unlock()
}

func (pr *progress) fire() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.bd == nil {
		return
	}
	if pr.bd.InProgress() == nil {
		pr.m.Inc()
	}
	pr.t.Reset(pr.every)
}

// handleDurable processes one durable batch: decode, run the stages, store
// its enriched events and dead letters, then send the replies and ack it.
// A failure naks it for a later delivery, or on its last delivery
// dead-letters it whole and terminates it.
func (p *processor) handleDurable(msg *nats.Msg, ks *kindState, bd *durableDelivery) (took time.Duration) {
	start := time.Now()
	m := &p.pl.m
	m.inflight.Inc()
	defer m.inflight.Dec()
	p.progress.start(bd)
	defer p.progress.stop()
	p.r.Reset(msg.Data)
	if _, err := schemas.ReadBatchFrame(&p.r); err != nil {
		p.pl.m.batches.Inc()
		p.pl.m.decodeErrors.Inc()
		p.deadLetterBatch(msg, ks, bd, ReasonUndecodable, err)
		return time.Since(start)
	}
	span := p.startSpan(msg, ks)
	if span != nil {
		defer span.End()
	}
	if err := p.process(msg, ks); err != nil {
		p.fail(msg, ks, bd, ReasonStageFailed, err)
		return time.Since(start)
	}
	processed := time.Now()
	m.observe(stageValidateEnrich, start, processed)
	if span != nil {
		p.linkEvents(span)
		span.AddEvent("validated and enriched")
	}
	defer func() { m.observe(stagePublish, processed, start.Add(took)) }()
	if err := p.storeOutcomes(msg.Reply, ks, bd); err != nil {
		p.publishFailed(ks.dlq, err)
		p.fail(msg, ks, bd, ReasonPublishFailed, err)
		return time.Since(start)
	}
	p.progress.stop()
	if span != nil {
		span.AddEvent("stored")
		p.endSpan(span) // the deferred End does nothing after this one
	}
	if err := bd.Ack(); err != nil {
		p.publishFailed("ack", err)
	} else {
		p.dur.m.acks.Inc()
	}
	took = time.Since(start)
	m.duration.Update(took.Seconds())
	return took
}

// fail settles a batch that could not be processed: nak with a delay
// before its last delivery; on it, store the batch whole in the dead-letter
// stream and terminate it. A batch whose dead letter cannot be stored
// either is left unsettled: the stream keeps it.
func (p *processor) fail(msg *nats.Msg, ks *kindState, bd *durableDelivery, reason string, cause error) {
	if bd.NumDelivered() < uint64(p.pl.maxDeliver) {
		if bd.Nak(p.pl.nakDelay) == nil {
			p.dur.m.naks.Inc()
		}
		return
	}
	p.deadLetterBatch(msg, ks, bd, reason, cause)
}

// deadLetterBatch stores the batch whole in the dead-letter stream with
// its reason and delivery count, then terminates it; if the store fails,
// the batch is left unsettled.
func (p *processor) deadLetterBatch(msg *nats.Msg, ks *kindState, bd *durableDelivery, reason string, cause error) {
	d := p.dur
	detail := cause.Error()
	if len(detail) > maxErrorHeader {
		detail = detail[:maxErrorHeader]
	}
	h := nats.Header{
		schemas.HeaderFrame:  {schemas.FrameBatchV1},
		schemas.HeaderReason: {reason},
		HeaderDelivered:      {strconv.FormatUint(bd.NumDelivered(), 10)},
		HeaderError:          {detail},
		bus.HeaderMsgID:      {"dlq-batch " + strconv.FormatUint(bd.StreamSeq(), 10)},
	}
	if v := msg.Header.Get(schemas.HeaderCount); v != "" {
		h.Set(schemas.HeaderCount, v)
	}
	ctx, cancel := context.WithTimeout(p.ctx, bus.DefaultAckTimeout)
	defer cancel()
	ack, err := d.pub.Publish(ctx, ks.dlq, h, msg.Data)
	if err == nil {
		_, err = ack.Wait(ctx)
	}
	if err != nil {
		p.publishFailed(ks.dlq, fmt.Errorf("dead-lettering batch %d after %d deliveries: %w", bd.StreamSeq(), bd.NumDelivered(), err))
		return
	}
	for i, r := range batchReasons {
		if r == reason {
			d.m.deadBatches[i].Inc()
		}
	}
	_ = bd.Term(reason)
}

// Backoff of storeOutcomes between attempts.
const (
	storeRetryFirst = 50 * time.Millisecond
	storeRetryMax   = 2 * time.Second
)

// storeOutcomes runs publishDurable until it succeeds, fails in a way a
// retry cannot mend, has been retried for the batch's AckWait, or the
// worker begins to shut down. A transient failure (no stream answering
// while a cluster elects a leader, an ack timeout, a lost connection, the
// publisher's backpressure) is retried here, with backoff, while the
// progress acks keep the batch, instead of naking it at once: a nak spends
// one of the batch's --max-deliver deliveries, and a cluster that needed
// longer than those to elect a leader would send valid, acknowledged
// events to the dead-letter stream instead of the enriched one. The bound
// keeps a store that stays down (a deleted stream) from holding a worker
// for ever: past it the batch is nakked as before, so an outage
// dead-letters a batch only after about --max-deliver times --ack-wait.
// The retried publishes carry the same Nats-Msg-Id, so what an earlier
// attempt stored is stored once.
func (p *processor) storeOutcomes(reply string, ks *kindState, bd *durableDelivery) error {
	wait, giveUp := storeRetryFirst, time.Now().Add(p.pl.storeHold)
	for {
		err := p.publishDurable(reply, ks, bd)
		if err == nil || p.ctx.Err() != nil || !(bus.Retryable(err) || errors.Is(err, bus.ErrBackpressure)) ||
			time.Now().Add(wait).After(giveUp) {
			return err
		}
		p.dur.m.storeRetries.Inc()
		p.publishFailed(ks.dlq, fmt.Errorf("storing batch %d's outcomes, retrying in %v: %w", bd.StreamSeq(), wait, err))
		t := time.NewTimer(wait)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return err
		case <-p.dur.stopping:
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, storeRetryMax)
	}
}

// publishDurable stores the outcome of every event of the batch: enriched
// events in the enriched stream, dead letters in the dead-letter stream,
// each with a Nats-Msg-Id from the event's identity so that a batch
// delivered again stores nothing twice. Once every publish is acked it
// sends the replies (core publishes to reply). It returns the first
// failure; the caller naks the batch and it is processed again whole.
func (p *processor) publishDurable(reply string, ks *kindState, bd *durableDelivery) error {
	b := &p.batch
	maxPayload := int(p.pub.MaxPayload())
	maxReply, maxEnriched := maxPayload-replyHeadroom, maxPayload-replyHeadroom-resultHeadroom
	if maxPayload <= 0 {
		maxReply, maxEnriched = math.MaxInt, math.MaxInt
	}
	// The client holds a publish's data and header until its ack: the
	// arena and headers are reused only once every ack has resolved.
	p.arena, p.acks, p.spans = p.arena[:0], p.acks[:0], p.spans[:0]
	nh := 0
	header := func(id string) nats.Header {
		if nh == len(p.hdrs) {
			p.hdrs = append(p.hdrs, nats.Header{bus.HeaderMsgID: {""}, schemas.HeaderReason: nil})
		}
		h := p.hdrs[nh]
		nh++
		h[bus.HeaderMsgID][0] = id
		delete(h, schemas.HeaderReason)
		return h
	}
	send := func(subj string, h nats.Header, data []byte) error {
		ack, err := p.dur.pub.Publish(p.ctx, subj, h, data)
		if err != nil {
			return err
		}
		p.acks = append(p.acks, ack)
		return nil
	}
	var enriched, rejected int
	var err error
	for i := 0; i < b.n && err == nil; i++ {
		ev := &b.events[i]
		start := len(p.arena)
		if len(b.errs[i]) == 0 {
			out := &b.out[i]
			p.arena = out.AppendMsgpack(p.arena)
			if size := len(p.arena) - start; size > maxEnriched {
				p.arena = p.arena[:start]
				b.Reject(i, schemas.FieldError{Field: "event", Code: schemas.CodeTooLarge,
					Detail: fmt.Sprintf("enriched, it is %d bytes: more than NATS max_payload %d allows", size, maxPayload)})
			} else {
				symbol := out.Quote.Symbol
				if out.Kind == schemas.KindTrade {
					symbol = out.Trade.Symbol
				}
				err = send(p.enrichedSubject(out.Kind, symbol), header(msgID("", ev.Source, ev.ID, bd.StreamSeq(), i)), p.arena[start:])
				enriched++
			}
		}
		if len(b.errs[i]) > 0 {
			rejected++
			p.arena = schemas.AppendDeadLetter(p.arena, b.errs[i], b.raw[i])
			if maxPayload > 0 && len(p.arena)-start > maxPayload-deadLetterHeadroom-len(b.errs[i][0].Code) {
				p.arena = schemas.AppendDeadLetter(p.arena[:start], b.errs[i], nil)
			}
			h := header(msgID("dlq ", ev.Source, ev.ID, bd.StreamSeq(), i))
			h[schemas.HeaderReason] = []string{b.errs[i][0].Code}
			err = send(ks.dlq, h, p.arena[start:])
		}
		p.spans = append(p.spans, span{start, len(p.arena)})
	}
	// Wait for every ack sent, failed or not, before the buffers are
	// reused; a wait cut short leaves them to the client.
	for _, a := range p.acks {
		rc, werr := a.Wait(p.ctx)
		if werr != nil {
			err = firstErr(err, werr)
			if p.ctx.Err() != nil {
				p.arena, p.hdrs = nil, nil
				break
			}
			continue
		}
		if rc.Duplicate {
			p.dur.m.duplicates.Inc()
		}
	}
	if err != nil {
		return err
	}
	if reply != "" {
		p.startReply()
		for i := 0; i < b.n; i++ {
			if b.events[i].Corr != 0 {
				p.addResult(reply, i, maxReply, p.arena[p.spans[i].from:p.spans[i].to])
			}
		}
		if p.nres > 0 {
			p.sendReply(reply)
		}
	}
	// Counted once stored: an attempt retried in place or a batch
	// delivered again counts nothing twice.
	for i := 0; i < b.n; i++ {
		if len(b.errs[i]) > 0 {
			ks.m.byCode[codeIndex(b.errs[i][0].Code)].Inc()
		}
	}
	ks.m.enriched.Add(enriched)
	ks.m.rejected.Add(rejected)
	p.pl.enriched.Add(uint64(enriched))
	p.pl.rejected.Add(uint64(rejected))
	return nil
}

// span is an event's encoding in the arena.
type span struct{ from, to int }

// msgID is the Nats-Msg-Id of an event's enriched form (prefix "") or dead
// letter (prefix "dlq "): prefix, the event's CloudEvents source, a space
// and its id, when the source is non-empty and has no space or control
// character and the id has no control character (so the first space
// separates them). Otherwise, and for an event without source or id, it is
// "sha256:" and the hex SHA-256 of the prefix, the source's length and
// bytes and the id (or, lacking either, of the batch's stream sequence and
// the event's index in it), which no readable form can equal.
func msgID(prefix, source, id string, seq uint64, index int) string {
	if readable(source, true) && readable(id, false) && id != "" {
		return prefix + source + " " + id
	}
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(prefix))
	if source != "" && id != "" {
		h.Write([]byte{0})
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(source)))])
		h.Write([]byte(source))
		h.Write([]byte(id))
	} else {
		h.Write([]byte{1})
		h.Write(n[:binary.PutUvarint(n[:], seq)])
		h.Write(n[:binary.PutUvarint(n[:], uint64(index))])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// readable reports whether s fits a readable msg id: no control character,
// and no space either when noSpace; a source must not be empty.
func readable(s string, noSpace bool) bool {
	if noSpace && s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || noSpace && c == ' ' {
			return false
		}
	}
	return true
}
