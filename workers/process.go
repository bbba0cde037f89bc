package workers

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// publisher is the part of *nats.Conn that processing uses.
type publisher interface {
	Publish(subj string, data []byte) error
	PublishMsg(m *nats.Msg) error
	MaxPayload() int64
}

var _ publisher = (*nats.Conn)(nil)

// maxCachedSubjects bounds each goroutine's cache of enriched subject names;
// when it is full the cache starts over.
const maxCachedSubjects = 8192

// replyHeadroom is kept free under the connection's maximum payload for the
// reply frame's headers.
const replyHeadroom = 256

// resultHeadroom is what a result map adds around an enriched event in a
// reply frame (the frame's array header, corr, seq, status), rounded up.
const resultHeadroom = 64

// deadLetterHeadroom is kept free under the connection's maximum payload
// for a dead letter's headers, besides its reason code.
const deadLetterHeadroom = 64

// arrayHeaderLen is the size of a reply frame's patchable array header.
const arrayHeaderLen = 5

// subjectKey keys the enriched subject cache.
type subjectKey struct {
	kind   schemas.Kind
	symbol string
}

// processor is the state of one processing goroutine, reused from batch to
// batch so that a warm goroutine does not allocate per valid event.
type processor struct {
	pl    *pipeline
	pub   publisher
	ctx   context.Context
	batch Batch
	r     schemas.Reader

	buf      []byte // the enriched event or dead letter being published
	reply    []byte // the reply frame being built
	scratch  []byte // a result moved to the next reply frame
	nres     int    // results in reply
	subjects map[subjectKey]string
	dlqMsg   nats.Msg
	replyMsg nats.Msg
	sent     [20]byte // the reply frame's Sluice-Sent, in decimal

	// The durable side (nil dur: no durable kind): the batch's encoded
	// outcomes and their publishes, reused once every ack has resolved.
	dur      *durable
	progress *progress
	arena    []byte
	spans    []span
	acks     []bus.Ack
	hdrs     []nats.Header
}

func newProcessor(ctx context.Context, pl *pipeline, pub publisher) *processor {
	return &processor{
		pl:       pl,
		pub:      pub,
		ctx:      ctx,
		buf:      make([]byte, 0, 4096),
		reply:    make([]byte, 0, 4096),
		subjects: make(map[subjectKey]string),
		dlqMsg:   nats.Msg{Header: nats.Header{schemas.HeaderReason: {""}}},
		replyMsg: nats.Msg{Header: nats.Header{schemas.HeaderFrame: {schemas.FrameReplyV1}, schemas.HeaderSent: {""}}},
	}
}

// handle processes one batch frame of a core kind: decode, run the stages,
// publish. It returns how long that took (also when a stage abandoned the
// batch).
func (p *processor) handle(msg *nats.Msg, ks *kindState) (took time.Duration) {
	start := time.Now()
	m := &p.pl.m
	m.inflight.Inc()
	defer m.inflight.Dec()
	span := p.startSpan(msg, ks)
	if p.process(msg, ks) != nil {
		if span != nil {
			span.End()
		}
		return time.Since(start)
	}
	processed := time.Now()
	m.observe(stageValidateEnrich, start, processed)
	if span != nil {
		p.linkEvents(span)
		span.AddEvent("validated and enriched")
	}
	p.publish(replyOf(msg), ks)
	took = time.Since(start)
	m.observe(stagePublish, processed, start.Add(took))
	if span != nil {
		span.AddEvent("published")
		p.endSpan(span)
	}
	m.duration.Update(took.Seconds())
	return took
}

// replyOf returns the reply inbox of a core batch: its HeaderReply, else
// (a gateway from before the header) the message's reply subject.
func replyOf(msg *nats.Msg) string {
	if v := msg.Header[schemas.HeaderReply]; len(v) > 0 && v[0] != "" {
		return v[0]
	}
	return msg.Reply
}

// process decodes msg's batch frame into p.batch and runs the stages. It
// returns the error of a stage that failed (counted and logged): the batch
// is then not to be published.
func (p *processor) process(msg *nats.Msg, ks *kindState) error {
	m := &p.pl.m
	m.batches.Inc()
	p.pl.batches.Add(1)
	b := &p.batch
	b.reset(ks.kind, p.pl.now())
	if errs, err := p.decode(msg.Data); errs > 0 {
		m.decodeErrors.Add(errs)
		p.pl.decodeErrors.Add(uint64(errs))
		p.warn(&p.pl.decodeLog, "undecodable batch frame", msg, err)
	}
	for _, s := range p.pl.stages {
		if err := s.Process(p.ctx, b); err != nil {
			m.stageErrors.Inc()
			p.warn(&p.pl.stageLog, "stage failed, batch not published", msg, err)
			return err
		}
	}
	return nil
}

// decode reads msg's batch frame into p.batch and returns how many decode
// errors it met and the first. The events before a break in the frame are
// kept. An event that is well-formed MessagePack but not a valid event (an
// attribute or its data of the wrong shape) is kept, rejected with field
// "event" and code invalid_field, and decoding goes on with the next.
func (p *processor) decode(data []byte) (int, error) {
	b, r := &p.batch, &p.r
	r.Reset(data)
	n, err := schemas.ReadBatchFrame(r)
	if err != nil {
		return 1, err
	}
	errs, first := 0, error(nil)
	for range n {
		start := r.Offset()
		i := b.slot()
		err := b.events[i].DecodeMsgpack(r)
		if err != nil && r.Err() != nil {
			// The frame itself is broken: nothing after this is readable.
			b.n--
			return errs + 1, firstErr(first, fmt.Errorf("event %d of %d: %w", i, n, err))
		}
		b.raw[i] = data[start:r.Offset()]
		if err != nil {
			errs++
			first = firstErr(first, err)
			b.Reject(i, schemas.FieldError{Field: "event", Code: schemas.CodeInvalidField, Detail: err.Error()})
		}
	}
	if rest := len(r.Rest()); rest > 0 {
		return errs + 1, firstErr(first, fmt.Errorf("%w: %d bytes after the last of %d events", schemas.ErrFrame, rest, n))
	}
	return errs, first
}

// firstErr returns first if it is set, else err.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// publish sends the outcome of every event of the batch: enriched events,
// dead letters and, when the batch names a reply inbox, the results of the
// events that wait for one. An enriched event too large for one NATS
// message (past the connection's max_payload less the room of a reply
// frame, so that its result fits one too) is rejected with
// [schemas.CodeTooLarge] and dead-lettered as it came, like any invalid
// event.
func (p *processor) publish(reply string, ks *kindState) {
	b := &p.batch
	waiting := reply != ""
	if waiting {
		p.startReply()
	}
	// A worker processes only what it received: it is connected, and
	// max_payload is known; 0 would mean no bound.
	maxPayload := int(p.pub.MaxPayload())
	maxReply, maxEnriched := maxPayload-replyHeadroom, maxPayload-replyHeadroom-resultHeadroom
	if maxPayload <= 0 {
		maxReply, maxEnriched = math.MaxInt, math.MaxInt
	}
	var enriched, rejected int
	for i := 0; i < b.n; i++ {
		if len(b.errs[i]) == 0 && !p.publishEnriched(i, maxEnriched) { // leaves the encoded event in p.buf
			b.Reject(i, schemas.FieldError{Field: "event", Code: schemas.CodeTooLarge,
				Detail: fmt.Sprintf("enriched, it is %d bytes: more than NATS max_payload %d allows", len(p.buf), maxPayload)})
		}
		if len(b.errs[i]) > 0 {
			rejected++
			ks.m.byCode[codeIndex(b.errs[i][0].Code)].Inc()
			p.deadLetter(ks, i, maxPayload)
		} else {
			enriched++
		}
		if waiting && b.events[i].Corr != 0 {
			p.addResult(reply, i, maxReply, p.buf)
		}
	}
	if waiting && p.nres > 0 {
		p.sendReply(reply)
	}
	ks.m.enriched.Add(enriched)
	ks.m.rejected.Add(rejected)
	p.pl.enriched.Add(uint64(enriched))
	p.pl.rejected.Add(uint64(rejected))
}

// publishEnriched encodes event i's enriched form into p.buf and publishes
// it, unless it is larger than limit: then it returns false.
func (p *processor) publishEnriched(i, limit int) bool {
	out := &p.batch.out[i]
	symbol := out.Quote.Symbol
	if out.Kind == schemas.KindTrade {
		symbol = out.Trade.Symbol
	}
	p.buf = out.AppendMsgpack(p.buf[:0])
	if len(p.buf) > limit {
		return false
	}
	subj := p.enrichedSubject(out.Kind, symbol)
	if err := p.pub.Publish(subj, p.buf); err != nil {
		p.publishFailed(subj, err)
	}
	return true
}

// enrichedSubject returns the subject of an enriched event, from the cache
// when it can: a hit does not allocate.
func (p *processor) enrichedSubject(k schemas.Kind, symbol string) string {
	if s, ok := p.subjects[subjectKey{k, symbol}]; ok {
		return s
	}
	if len(p.subjects) >= maxCachedSubjects {
		clear(p.subjects)
	}
	s := p.pl.subjects.Enriched(k, symbol)
	// symbol aliases the message: the key keeps a copy.
	p.subjects[subjectKey{k, strings.Clone(symbol)}] = s
	return s
}

// deadLetter publishes event i's dead letter: its failures and the event as
// it came. The event fitted in its batch frame, but with the failures a dead
// letter can outgrow max_payload; it then goes without the event (nil), so
// that the failure is still known. The limit is off (0) when unknown.
func (p *processor) deadLetter(ks *kindState, i, maxPayload int) {
	b := &p.batch
	p.buf = schemas.AppendDeadLetter(p.buf[:0], b.errs[i], b.raw[i])
	if maxPayload > 0 && len(p.buf) > maxPayload-deadLetterHeadroom-len(b.errs[i][0].Code) {
		p.buf = schemas.AppendDeadLetter(p.buf[:0], b.errs[i], nil)
	}
	p.dlqMsg.Subject = ks.dlq
	p.dlqMsg.Data = p.buf
	p.dlqMsg.Header[schemas.HeaderReason][0] = b.errs[i][0].Code
	if err := p.pub.PublishMsg(&p.dlqMsg); err != nil {
		p.publishFailed(ks.dlq, err)
	}
}

func (p *processor) startReply() {
	p.reply = schemas.AppendArrayHeader32(p.reply[:0], 0)
	p.nres = 0
}

// addResult appends event i's result to the reply frame: enc is its
// enriched encoding when it is valid. A frame that would
// outgrow the connection's maximum payload is sent first and the result
// starts the next one, so a batch gets more than one reply only when its
// results cannot fit in one message.
func (p *processor) addResult(reply string, i, maxReply int, enc []byte) {
	b := &p.batch
	ev := &b.events[i]
	before := len(p.reply)
	if len(b.errs[i]) > 0 {
		p.reply = schemas.AppendResultInvalid(p.reply, ev.Corr, ev.Seq, b.errs[i])
	} else {
		// enc is the event's enriched encoding, as published.
		p.reply = schemas.AppendResultOKRaw(p.reply, ev.Corr, ev.Seq, enc)
	}
	p.nres++
	if len(p.reply) <= maxReply {
		return
	}
	if size := len(p.reply) - before; size+arrayHeaderLen > maxReply {
		// Too large even alone (failures with long details): an error
		// that fits stands in for it.
		p.reply = schemas.AppendResultInvalid(p.reply[:before], ev.Corr, ev.Seq, []schemas.FieldError{{
			Field: "event", Code: schemas.CodeTooLarge,
			Detail: fmt.Sprintf("the result is %d bytes, more than one NATS message holds", size)}})
		if len(p.reply) <= maxReply {
			return
		}
	}
	if p.nres == 1 {
		return
	}
	p.scratch = append(p.scratch[:0], p.reply[before:]...)
	p.reply = p.reply[:before]
	p.nres--
	p.sendReply(reply)
	p.startReply()
	p.reply = append(p.reply, p.scratch...)
	p.nres = 1
}

func (p *processor) sendReply(reply string) {
	schemas.PatchArrayHeader32(p.reply, p.nres)
	p.replyMsg.Subject = reply
	p.replyMsg.Data = p.reply
	// The client encodes the header within PublishMsg: the digits are
	// free again once it returns.
	d := strconv.AppendInt(p.sent[:0], time.Now().UnixNano(), 10)
	p.replyMsg.Header[schemas.HeaderSent][0] = unsafe.String(&d[0], len(d))
	if err := p.pub.PublishMsg(&p.replyMsg); err != nil {
		p.publishFailed(reply, err)
		return
	}
	p.pl.m.replies.Inc()
	p.pl.replies.Add(1)
}

func (p *processor) publishFailed(subject string, err error) {
	p.pl.m.publishErrors.Inc()
	if ok, suppressed := p.pl.publishLog.allow(); ok {
		p.pl.log.Warn("publish failed", "group", p.pl.group, "subject", subject,
			"err", err, "suppressed", suppressed)
	}
}

func (p *processor) warn(l *logLimiter, what string, msg *nats.Msg, err error) {
	if ok, suppressed := l.allow(); ok {
		p.pl.log.LogAttrs(p.ctx, slog.LevelWarn, what, slog.String("group", p.pl.group),
			slog.String("subject", msg.Subject), slog.Int("bytes", len(msg.Data)),
			slog.Any("err", err), slog.Uint64("suppressed", suppressed))
	}
}
