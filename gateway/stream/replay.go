package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// Replayer is the seam through which durable mode serves snapshots and
// resumes from the enriched JetStream stream, and follows it for live
// events. [JetStream] implements it; a [Hub] without one serves every type
// in core mode, where resumes are refused (409) or answered by a snapshot
// when asked (fallback=snapshot).
//
// Positions are the stream's sequences: a resume token's Pos is the stream
// sequence of the event it came with, and a resume sends the events stored
// after it.
type Replayer interface {
	// Stream names the stream that stores k's events, as the resume tokens
	// of k name it; "" when k's events are not stored (core mode for k).
	Stream(k schemas.Kind) string
	// Check tells whether r can be served: nil, an error wrapping
	// [ErrBadToken] for a position past the stream's last (a token of
	// another life of the stream), [ErrResumeGone] for one the stream no
	// longer holds, or another error when the stream cannot be read.
	Check(ctx context.Context, r Replay) error
	// Replay sends the stored events r asks for, in stream order, and
	// returns a position through which it is complete: every event r asks
	// for stored at or below through has been sent (with r.Last, the last
	// event of each subject at or below through). It stops once it has
	// sent what was stored when it began.
	Replay(ctx context.Context, r Replay, emit func(ev ReplayedEvent) error) (through uint64, err error)
	// Follow calls deliver, from one goroutine at a time and in stream
	// order, with the last stored event of each of k's subjects, then with
	// every event of k stored after, until stop is called. pending is the
	// number of events stored and not yet delivered (0: caught up); the
	// returned pending is that number when Follow began.
	Follow(k schemas.Kind, deliver func(ev ReplayedEvent, pending uint64)) (pending uint64, stop func(), err error)
}

// Replay asks a [Replayer] for stored events: after a position (From), from
// a time (Since, when not zero), or the last of each subject (Last).
type Replay struct {
	Kind    schemas.Kind
	Symbols []string // nil: every symbol
	From    uint64   // events after this stream sequence
	Since   time.Time
	Last    bool
}

// ReplayedEvent is one stored enriched event.
type ReplayedEvent struct {
	Symbol string
	Data   []byte // the MessagePack CloudEvent
	Pos    uint64 // its stream sequence
}

// replayInactive is how long the server keeps a replay's or a follow's
// consumer once nobody pulls from it: a gateway that dies leaves nothing
// behind for long.
const replayInactive = 10 * time.Second

// JetStream is the [Replayer] of the enriched stream that bus.Apply creates
// (bus.EnrichedStream), for the types whose delivery is durable: workers
// store one message per enriched event there, on
// <prefix>.enriched.<type>.<symbol>. It reads the stream through ordered
// consumers (ephemeral, in memory, recreated by the client on a gap), so
// what it sends has no gap and no duplicate.
type JetStream struct {
	js       jetstream.JetStream
	name     string
	subjects schemas.Subjects
	delivery bus.Modes
}

var _ Replayer = (*JetStream)(nil)

// NewJetStream builds the replayer of the pipeline with subjects s on nc,
// for the types whose mode in delivery is durable.
func NewJetStream(nc *nats.Conn, s schemas.Subjects, delivery bus.Modes) (*JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("stream: jetstream: %w", err)
	}
	return &JetStream{js: js, name: bus.EnrichedStream(s), subjects: s, delivery: delivery}, nil
}

// Stream returns "<stream>/<type>" for a durable type, "" for a core one.
func (j *JetStream) Stream(k schemas.Kind) string {
	if j.delivery.Of(k) != bus.ModeDurable {
		return ""
	}
	return j.name + "/" + k.String()
}

// base is "<prefix>.enriched.<type>.".
func (j *JetStream) base(k schemas.Kind) string {
	return j.subjects.Prefix() + ".enriched." + k.String() + "."
}

func (j *JetStream) filters(k schemas.Kind, symbols []string) []string {
	if symbols == nil {
		return []string{j.base(k) + ">"}
	}
	out := make([]string, len(symbols))
	for i, s := range symbols {
		out[i] = j.subjects.Enriched(k, s)
	}
	return out
}

func (j *JetStream) state(ctx context.Context) (jetstream.Stream, jetstream.StreamState, error) {
	st, err := j.js.Stream(ctx, j.name)
	if err != nil {
		return nil, jetstream.StreamState{}, fmt.Errorf("reading stream %s (durable delivery stores enriched events there): %w", j.name, err)
	}
	return st, st.CachedInfo().State, nil
}

// Check refuses a position past the stream's last one, or before its first.
func (j *JetStream) Check(ctx context.Context, r Replay) error {
	_, s, err := j.state(ctx)
	if err != nil {
		return err
	}
	switch {
	case r.Last || !r.Since.IsZero():
		return nil
	case r.From > s.LastSeq:
		return fmt.Errorf("%w: position %d is past the last one stream %s holds (%d): a token of another life of the stream", ErrBadToken, r.From, j.name, s.LastSeq)
	case r.From+1 < s.FirstSeq:
		return fmt.Errorf("%w: stream %s holds positions %d to %d, and events after %d may have been dropped (its age or size limit)", ErrResumeGone, j.name, s.FirstSeq, s.LastSeq, r.From)
	}
	return nil
}

// snapshotAttempts bounds how many times a snapshot starts again after its
// ordered consumer was recreated under it.
const snapshotAttempts = 3

// errSnapshotReset says a snapshot's ordered consumer was recreated (a
// reconnect, missed heartbeats): the new one delivers every event from the
// cursor on, not the last of each subject, so the snapshot starts again.
var errSnapshotReset = errors.New("the snapshot's consumer was recreated")

// Replay reads r's events through an ordered consumer until it has sent
// every one stored when it began. A snapshot (r.Last) whose consumer is
// recreated midway starts again, sending a subject's event only when it is
// newer than the one it sent that subject already.
func (j *JetStream) Replay(ctx context.Context, r Replay, emit func(ev ReplayedEvent) error) (uint64, error) {
	if !r.Last {
		return j.replay(ctx, r, emit, nil)
	}
	sent := map[string]uint64{} // by symbol, the position sent
	for attempt := 1; ; attempt++ {
		through, err := j.replay(ctx, r, emit, sent)
		if !errors.Is(err, errSnapshotReset) || attempt == snapshotAttempts {
			return through, err
		}
	}
}

// replay is one attempt of Replay; sent is the snapshot's positions sent
// by symbol (nil unless r.Last).
func (j *JetStream) replay(ctx context.Context, r Replay, emit func(ev ReplayedEvent) error, sent map[string]uint64) (uint64, error) {
	st, s, err := j.state(ctx)
	if err != nil {
		return 0, err
	}
	through := max(s.LastSeq, r.From)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: j.filters(r.Kind, r.Symbols), InactiveThreshold: replayInactive}
	switch {
	case r.Last:
		cfg.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	case !r.Since.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &r.Since
	default:
		if r.From >= s.LastSeq {
			return through, nil
		}
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = r.From + 1
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("replaying %s: %w", j.name, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, fmt.Errorf("replaying %s: %w", j.name, err)
	}
	defer it.Stop()
	info := cons.CachedInfo()
	if info != nil && info.NumPending == 0 {
		return through, nil
	}
	// A snapshot is the last event of each subject when the consumer
	// began: those it had pending then, not the events stored since.
	left := uint64(0)
	if r.Last && info != nil {
		left = info.NumPending
	}
	base := j.base(r.Kind)
	for n := uint64(1); ; n++ {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return 0, fmt.Errorf("replaying %s: %w", j.name, err)
		}
		ev, pending, err := replayed(m, base)
		if err != nil {
			return 0, err
		}
		if sent != nil {
			// A recreated ordered consumer starts its own sequence at 1.
			if md, err := m.Metadata(); err == nil && md.Sequence.Consumer != n {
				return 0, fmt.Errorf("replaying %s: %w", j.name, errSnapshotReset)
			}
			if ev.Symbol != "" && sent[ev.Symbol] >= ev.Pos {
				ev.Symbol = "" // sent by an earlier attempt
			} else if ev.Symbol != "" {
				sent[ev.Symbol] = ev.Pos
			}
		}
		if ev.Symbol != "" {
			if err := emit(ev); err != nil {
				return 0, err
			}
		}
		through = max(through, ev.Pos)
		if pending == 0 || left == 1 {
			return through, nil
		}
		if left > 0 {
			left--
		}
	}
}

// replayed reads a stored message; an event whose subject names no symbol
// has Symbol "" (skipped, but its position counts).
func replayed(m jetstream.Msg, base string) (ReplayedEvent, uint64, error) {
	md, err := m.Metadata()
	if err != nil {
		return ReplayedEvent{}, 0, fmt.Errorf("reading a stored event's position: %w", err)
	}
	ev := ReplayedEvent{Data: m.Data(), Pos: md.Sequence.Stream}
	if tok, ok := strings.CutPrefix(m.Subject(), base); ok {
		ev.Symbol, _ = schemas.TokenSymbol(tok)
	}
	return ev, md.NumPending, nil
}

// Follow runs an ordered consumer from the last event of each of k's
// subjects on.
func (j *JetStream) Follow(k schemas.Kind, deliver func(ev ReplayedEvent, pending uint64)) (uint64, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, _, err := j.state(ctx)
	if err != nil {
		return 0, nil, err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: j.filters(k, nil), DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, InactiveThreshold: replayInactive})
	if err != nil {
		return 0, nil, fmt.Errorf("following %s: %w", j.name, err)
	}
	base := j.base(k)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, pending, err := replayed(m, base)
		if err != nil {
			return
		}
		deliver(ev, pending)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("following %s: %w", j.name, err)
	}
	var pending uint64
	if info := cons.CachedInfo(); info != nil {
		pending = info.NumPending
	}
	return pending, cc.Stop, nil
}
