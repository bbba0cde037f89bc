package stream

import (
	"time"
)

// takeBatch is how many items a writer takes from its queue at a time.
const takeBatch = 64

// transport writes a session's frames: the SSE or NDJSON body of an HTTP
// response, or WebSocket messages.
type transport interface {
	// write sends the frames buf[ends[i-1]:ends[i]], within the write timeout.
	write(buf []byte, ends []int) error
	// keepAlive tells the peer and the proxies between that the stream lives.
	keepAlive() error
	// gone is closed when the peer has gone.
	gone() <-chan struct{}
	// end sends the final frame and closes the stream.
	end(buf []byte, reason string) error
}

// session is one subscriber's writer: it takes events from its queue,
// frames them and writes them, in the goroutine that serves its request.
type session struct {
	hub  *Hub
	feed *feed
	q    *queue
	req  *request
	fm   format

	tok   []byte // the token of the last event delivered
	buf   []byte
	ends  []int
	items []item
	live  bool // past the snapshot's end (or no snapshot)

	// Durable mode: fromStream says the subscriber is served from the stream
	// first (durable.go); live events at or below floor were sent by it;
	// seqs numbers each symbol's events within this subscription.
	fromStream bool
	floor      uint64
	seqs       map[string]uint64

	// max_rate (quotes only, live events only)
	interval int64 // ns between two events of a symbol
	lastSent map[*topic]int64
	held     map[*topic]item
	heldDue  int64
	rate     *time.Timer
}

func (s *session) run(tr transport) {
	s.live = !s.req.snapshot
	if s.feed.rep != nil {
		s.seqs = make(map[string]uint64)
	}
	if s.fromStream {
		if err := s.catchUp(tr); err != nil {
			if s.hub.closed() {
				s.end(tr, EndShutdown, "the gateway is shutting down: subscribe again (to another gateway)")
				return
			}
			s.hub.opts.Logger.Warn("stream: reading the durable stream", "type", s.feed.kind.String(), "err", err)
			s.end(tr, EndError, "reading the stream failed: resume with the token ("+err.Error()+")")
			return
		}
	}
	if s.req.maxRate > 0 && s.q.conflate {
		s.interval = int64(float64(time.Second) / s.req.maxRate)
		s.lastSent = make(map[*topic]int64)
		s.held = make(map[*topic]item)
		s.rate = time.NewTimer(time.Hour)
		s.rate.Stop()
		defer s.rate.Stop()
	}
	var rateC <-chan time.Time
	if s.rate != nil {
		rateC = s.rate.C
	}
	ka := time.NewTimer(s.hub.opts.KeepAlive)
	defer ka.Stop()
	for {
		select {
		case <-s.q.wake:
		case <-rateC:
			s.flushHeld(time.Now().UnixNano())
		case <-ka.C:
			if tr.keepAlive() != nil {
				return
			}
			ka.Reset(s.hub.opts.KeepAlive)
			continue
		case <-tr.gone():
			return
		case <-s.hub.closing:
			s.end(tr, EndShutdown, "the gateway is shutting down: subscribe again (to another gateway)")
			return
		}
		cut, err := s.drain(tr)
		if err != nil {
			return
		}
		if cut {
			s.hub.m.cut.Inc()
			s.end(tr, EndSlowConsumer, "this subscriber read trades slower than they arrived and fell more than its buffer behind: resume with the token")
			return
		}
		ka.Reset(s.hub.opts.KeepAlive)
	}
}

// drain writes what the queue holds, batch by batch, until it is empty.
func (s *session) drain(tr transport) (cut bool, err error) {
	for {
		s.items, cut = s.q.take(s.items[:0], takeBatch)
		if cut {
			return true, nil
		}
		if len(s.items) == 0 && len(s.ends) == 0 {
			return false, nil
		}
		for i := range s.items {
			s.add(&s.items[i])
		}
		if err := s.flush(tr); err != nil {
			return false, err
		}
		if len(s.items) < takeBatch {
			return false, nil
		}
	}
}

func (s *session) flush(tr transport) error {
	if len(s.ends) == 0 {
		return nil
	}
	err := tr.write(s.buf, s.ends)
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	return err
}

// add frames one item into the pending batch, or holds it back for max_rate.
func (s *session) add(it *item) {
	if it.t != nil && it.pos <= s.floor {
		return // sent by the catch-up
	}
	if it.mark == markSnapshotEnd {
		s.buf = appendControl(s.buf, s.fm, &control{typ: TypeSnapshotEnd, count: int(it.count)})
		s.ends = append(s.ends, len(s.buf))
		s.live = true
		return
	}
	if s.interval > 0 && s.live {
		now := time.Now().UnixNano()
		if last, ok := s.lastSent[it.t]; ok && now-last < s.interval {
			if h, ok := s.held[it.t]; ok {
				it.replaced += h.replaced + 1
			}
			s.held[it.t] = *it
			if due := last + s.interval; s.heldDue == 0 || due < s.heldDue {
				s.heldDue = due
				s.rate.Reset(time.Duration(due - now))
			}
			return
		}
		s.lastSent[it.t] = now
		if h, ok := s.held[it.t]; ok {
			it.replaced += h.replaced + 1
			delete(s.held, it.t)
		}
	}
	s.emit(it, it.t.symbol)
}

// emit frames one event of symbol sym into the pending batch.
func (s *session) emit(it *item, sym string) {
	if s.seqs != nil {
		it.seq = s.seqs[sym] + 1 + uint64(it.replaced)
		s.seqs[sym] = it.seq
	}
	s.tok = Token{Stream: s.feed.stream, Epoch: s.feed.epoch, Pos: it.pos}.Append(s.tok[:0])
	var ok bool
	if s.buf, ok = appendEvent(s.buf, s.fm, it, s.tok); !ok {
		s.hub.m.badData.Inc()
		return
	}
	s.ends = append(s.ends, len(s.buf))
	s.hub.m.delivered.Inc()
	if it.replaced > 0 {
		s.hub.m.conflated.Add(int(it.replaced))
	}
}

// flushHeld emits the held events whose interval has passed and sets the
// timer for the next.
func (s *session) flushHeld(now int64) {
	s.heldDue = 0
	for t, it := range s.held {
		if due := s.lastSent[t] + s.interval; due <= now {
			s.lastSent[t] = now
			s.emit(&it, t.symbol)
			delete(s.held, t)
		} else if s.heldDue == 0 || due < s.heldDue {
			s.heldDue = due
		}
	}
	if s.heldDue != 0 {
		s.rate.Reset(time.Duration(s.heldDue - now))
	}
}

func (s *session) end(tr transport, reason, detail string) {
	s.buf = appendControl(s.buf[:0], s.fm, &control{typ: TypeStreamEnd, reason: reason, token: s.tok, detail: detail})
	_ = tr.end(s.buf, reason)
}
