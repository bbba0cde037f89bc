package stream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Durable mode: a type whose events the [Replayer] stores is fed from the
// stream, not from core NATS subscriptions. One ordered consumer per type
// (started by the first subscriber, run until the hub shuts down) delivers
// the last stored event of each symbol, then every event stored after, in
// stream order with no gap; the feed's position is the stream sequence of
// the last event it handled, and the cache holds the last event of every
// symbol through that position.
//
// A subscriber is then served one of two ways:
//
//   - a snapshot (or nothing) from the cache, exactly as in core mode: its
//     queue is registered, and the cache copied into it, under the lock that
//     orders live events. This is the common case, and costs no request to
//     the server.
//   - a catch-up: a resume (Last-Event-ID, since_seq, since), or a snapshot
//     the cache cannot give (it evicted a symbol past --stream-cache-symbols).
//     The session reads the stream (Replayer.Replay) up to a position
//     `through`, writing each event as it comes (and, for a snapshot, the
//     marker after them); then registers for live events at the feed's
//     position p; when p > through (events stored while it read), it reads
//     again from through, to a position at or past p.
//     Live events at or below the final through are dropped (they were
//     sent), those above it are sent: no gap, no duplicate, and positions
//     increase along the stream, so a resume token names exactly what was
//     delivered before it.

// followTimeout bounds the wait for a type's consumer to catch up with the
// stream when its first subscriber comes.
const followTimeout = 30 * time.Second

// errCatchUp tells ServeHTTP that a durable subscriber is served by a
// catch-up from the stream rather than from the cache.
var errCatchUp = errors.New("catch up from the stream")

// follow starts the type's consumer if it is not running and waits until
// it has caught up with the stream (the cache is then the stream's last
// value per symbol).
func (f *feed) follow(ctx context.Context) error {
	f.mu.Lock()
	if f.stopFollow == nil {
		f.complete = true
		pending, stop, err := f.rep.Follow(f.kind, f.onStored)
		if err != nil {
			f.mu.Unlock()
			return err
		}
		f.stopFollow = stop
		if pending == 0 {
			f.markReady()
		}
	}
	ready := f.ready
	f.mu.Unlock()
	t := time.NewTimer(followTimeout)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("the %s stream's consumer has not caught up after %v", f.kind, followTimeout)
	}
}

// markReady closes ready once. Called with mu held.
func (f *feed) markReady() {
	if !f.isReady {
		f.isReady = true
		close(f.ready)
	}
}

// onStored handles one event of the type's consumer.
func (f *feed) onStored(ev ReplayedEvent, pending uint64) {
	f.mu.Lock()
	if pending == 0 {
		f.markReady()
	}
	if ev.Pos <= f.pos || ev.Symbol == "" {
		f.pos = max(f.pos, ev.Pos)
		f.mu.Unlock()
		return
	}
	f.pos = ev.Pos
	t := f.topics[ev.Symbol]
	if t == nil {
		t = f.newTopic(ev.Symbol)
	}
	f.deliverLocked(t, ev.Data, ev.Pos)
	f.mu.Unlock()
	f.hub.m.received.Inc()
}

// registerLive adds q for req's symbols, with no snapshot, and returns the
// feed's position: q receives the events stored after it.
func (f *feed) registerLive(q *queue, req *request) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(q, req)
	return f.pos
}

// replayOf is the replay a durable request asks for.
func (f *feed) replayOf(req *request) Replay {
	r := Replay{Kind: f.kind, Symbols: req.symbols}
	switch {
	case !req.resume:
		r.Last = true
	case req.token.Stream != "":
		r.From = req.token.Pos
	case !req.since.IsZero():
		r.Since = req.since
	case req.sinceSeq > 0:
		r.From = req.sinceSeq - 1 // since_seq=N starts at N
	}
	return r
}

// admitDurableResume checks a durable resume against the stream: a position
// past its end is 400, one it no longer holds 410 (or a snapshot with
// fallback=snapshot).
func (f *feed) admitDurableResume(ctx context.Context, req *request) error {
	err := f.rep.Check(ctx, f.replayOf(req))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBadToken):
		return &StatusError{Status: http.StatusBadRequest, Title: "Bad resume token", Detail: err.Error()}
	case errors.Is(err, ErrResumeGone):
		if req.fallback {
			req.resume, req.snapshot = false, true
			return nil
		}
		return &StatusError{Status: http.StatusGone, Title: "Resume position gone",
			Detail: err.Error() + ": subscribe again without a position (a snapshot), with a later since, or add fallback=snapshot"}
	}
	return &StatusError{Status: http.StatusServiceUnavailable, Title: "Stream unavailable", Detail: err.Error(), RetryAfter: 1}
}

// catchUp writes what the subscriber asked for from the stream, registers
// it for live events and sets the floor at or below which live events were
// already sent (see the comment at the top of this file).
func (s *session) catchUp(tr transport) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-tr.gone():
		case <-s.hub.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	f := s.feed
	n := 0
	emit := func(ev ReplayedEvent) error {
		it := item{ev: &event{data: ev.Data}, pos: ev.Pos}
		s.emit(&it, ev.Symbol)
		n++
		if len(s.ends) >= takeBatch {
			return s.flush(tr)
		}
		return nil
	}
	r := f.replayOf(s.req)
	through, err := f.rep.Replay(ctx, r, emit)
	if err != nil {
		return err
	}
	if r.Last {
		// The snapshot ends here: what follows is live, whether it comes
		// from the stream (stored while the snapshot was read) or the feed.
		s.buf = appendControl(s.buf, s.fm, &control{typ: TypeSnapshotEnd, count: n})
		s.ends = append(s.ends, len(s.buf))
	}
	if p := f.registerLive(s.q, s.req); p > through {
		r = Replay{Kind: r.Kind, Symbols: r.Symbols, From: through}
		if through, err = f.rep.Replay(ctx, r, emit); err != nil {
			return err
		}
	}
	s.floor = through
	s.live = true
	return s.flush(tr)
}
