package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// h2Target is where the HTTP/2 connections of a run go, and what they send.
type h2Target struct {
	addr string
	tls  *tls.Config // nil for h2c
	tpl  *h2Template
}

func newH2Target(cfg *Config) (*h2Target, error) {
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("bad target %q: %w", cfg.Target, err)
	}
	tg := &h2Target{addr: u.Host}
	if u.Port() == "" {
		tg.addr = net.JoinHostPort(u.Hostname(), map[bool]string{true: "443", false: "80"}[u.Scheme == "https"])
	}
	if cfg.Client.Proto == ProtoH2 {
		if cfg.Client.TLS == nil {
			return nil, errors.New("proto h2 needs a TLS configuration")
		}
		tg.tls = cfg.Client.TLS.Clone()
		tg.tls.NextProtos = []string{"h2"}
		if tg.tls.ServerName == "" {
			tg.tls.ServerName = u.Hostname()
		}
	}
	if tg.tpl, err = newH2Template(cfg.Payloads, u.Scheme, u.Host); err != nil {
		return nil, err
	}
	return tg, nil
}

// h2Lane is one of the run's connections over its life: when the server
// ends one with GOAWAY, or it breaks, the lane dials the next and sends it
// the requests the server did not process.
type h2Lane struct {
	g  *gen
	sh *shard
	// conn is the connection dialled by connect, then the current one.
	conn *h2Conn
	// tickets is the open-loop schedule; nil in a closed-loop run.
	tickets <-chan ticket
	srcDone bool
}

// run drives the lane's connections until the run is over.
func (l *h2Lane) run() {
	var retry []ticket
	for {
		retry = l.conn.serve(retry)
		l.conn = nil
		if l.srcDone && len(retry) == 0 {
			return
		}
		if !l.redial(&retry) {
			return
		}
	}
}

// redial dials the next connection; it returns false when the run is over
// first. A dial that fails fails the requests waiting for it, and is
// retried after a pause.
func (l *h2Lane) redial(retry *[]ticket) bool {
	for {
		if err := l.g.reqCtx.Err(); err != nil {
			l.failAll(*retry, errDrainTimeout)
			return false
		}
		c, err := dialH2(l.g.reqCtx, l)
		if err == nil {
			l.conn = c
			return true
		}
		err = fmt.Errorf("connecting: %w", err)
		l.failAll(*retry, err)
		*retry = nil
		if l.tickets == nil {
			now := time.Now()
			if l.g.runOver(now) {
				return false
			}
			l.sh.recordError(l.g.measured(now), err)
		} else if l.failQueued(err) {
			return false
		}
		tm := time.NewTimer(50 * time.Millisecond)
		select {
		case <-tm.C:
		case <-l.g.reqCtx.Done():
			tm.Stop()
		}
	}
}

// failQueued fails the open-loop tickets waiting while no connection is
// up; it reports whether the schedule is over.
func (l *h2Lane) failQueued(err error) bool {
	for {
		select {
		case t, ok := <-l.tickets:
			if !ok {
				l.srcDone = true
				return true
			}
			l.fail(t, err)
		default:
			return false
		}
	}
}

func (l *h2Lane) failAll(ts []ticket, err error) {
	for _, t := range ts {
		l.fail(t, err)
	}
}

// nextClosed issues the next closed-loop request, unless the window is
// over.
func (l *h2Lane) nextClosed() (ticket, bool) {
	now := time.Now()
	if l.g.runOver(now) {
		return ticket{}, false
	}
	l.g.issued.Add(1)
	return ticket{seq: l.g.seq.Add(1) - 1, intended: now, measured: l.g.measured(now)}, true
}

// fill opens streams while the connection has room (streams backing off
// take theirs): retries first, then, in a closed-loop run, new requests.
// mu is held.
func (l *h2Lane) fill(c *h2Conn) {
	for c.err == nil && c.werr == nil && !c.goaway && len(c.streams)+c.backingOff < c.limit {
		var t ticket
		switch {
		case len(c.queued) > 0:
			t, c.queued = c.queued[0], c.queued[1:]
		case l.tickets != nil || c.srcDone:
			return
		default:
			var ok bool
			if t, ok = l.nextClosed(); !ok {
				c.srcDone = true
				return
			}
			if n := len(c.woken); n > 0 { // a stream back from its backoff
				t.sheds, c.woken = c.woken[n-1], c.woken[:n-1]
			}
		}
		c.send(t)
	}
}

// collects tells whether the answer of s is kept for its ids.
func (l *h2Lane) collects(s *h2Stream) bool {
	return l.g.collect && s.t.measured && s.status == 202
}

// answer records the answer of s.
func (l *h2Lane) answer(s *h2Stream, lat time.Duration) {
	pl := l.g.cfg.Payloads.pick(s.t.seq)
	l.sh.record(s.status, lat, s.t.measured, pl.events)
	if l.collects(s) {
		l.sh.mu.Lock()
		l.sh.ids.add(s.body, pl)
		l.sh.mu.Unlock()
	}
	l.g.finished()
}

// fail records a request that got no answer.
func (l *h2Lane) fail(t ticket, err error) {
	l.sh.recordError(t.measured, err)
	l.g.finished()
}

// serve runs the connection until it ends, first sending retry, and
// returns the requests to send on the next one.
func (c *h2Conn) serve(retry []ticket) []ticket {
	stop := context.AfterFunc(c.l.g.reqCtx, func() {
		c.mu.Lock()
		c.shut(errDrainTimeout)
		c.mu.Unlock()
	})
	defer stop()
	var feeder sync.WaitGroup
	c.mu.Lock()
	c.queued = append(c.queued, retry...)
	c.l.fill(c)
	c.mu.Unlock()
	if c.l.tickets != nil {
		feeder.Go(c.feed)
	}
	rerr := c.readLoop()
	c.mu.Lock()
	if rerr == nil {
		rerr = errConnDone
	}
	if c.werr != nil {
		rerr = c.werr
	}
	c.shut(rerr)
	c.mu.Unlock()
	feeder.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	cause := c.err
	if cause != errConnDone && cause != errDrainTimeout {
		cause = fmt.Errorf("connection lost: %w", cause)
	}
	for _, s := range c.streams {
		t := s.t
		c.release(s)
		c.l.fail(t, cause)
	}
	if c.srcDone {
		c.l.srcDone = true
	}
	return append(c.retry, c.queued...)
}

// feed sends the open-loop schedule's tickets, each once the connection
// has a free stream; what it writes is flushed when no ticket is waiting.
func (c *h2Conn) feed() {
	for {
		c.mu.Lock()
		for c.err == nil && !c.goaway && len(c.streams)+len(c.queued) >= c.limit {
			c.check(c.flushLocked())
			c.wake.Wait()
		}
		over := c.err != nil || c.goaway
		c.mu.Unlock()
		if over {
			return
		}
		t, ok, stop := c.nextTicket()
		if stop {
			return
		}
		c.mu.Lock()
		switch {
		case !ok:
			c.srcDone = true
			c.check(c.flushLocked())
			if len(c.streams) == 0 && len(c.queued) == 0 {
				c.shut(errConnDone)
			}
		case c.err != nil || c.goaway:
			c.retry = append(c.retry, t)
		default:
			c.send(t)
		}
		c.mu.Unlock()
		if !ok {
			return
		}
	}
}

// nextTicket takes the schedule's next ticket, flushing first if it has to
// wait for one; stop is set when the connection ended while waiting.
func (c *h2Conn) nextTicket() (t ticket, ok, stop bool) {
	select {
	case t, ok = <-c.l.tickets:
		return t, ok, false
	default:
	}
	c.mu.Lock()
	c.check(c.flushLocked())
	c.mu.Unlock()
	select {
	case t, ok = <-c.l.tickets:
		return t, ok, false
	case <-c.done:
		return ticket{}, false, true
	}
}

// send opens a stream for t: HEADERS, then as much of the body as the
// windows allow. mu is held.
func (c *h2Conn) send(t ticket) {
	var s *h2Stream
	if n := len(c.free); n > 0 {
		s, c.free = c.free[n-1], c.free[:n-1]
	} else {
		s = &h2Stream{}
	}
	s.id, s.t, s.sendWin = c.nextID, t, c.peerWin
	c.nextID += 2
	if c.nextID > h2LastStreamID {
		c.goaway = true // no ids left: the lane dials a new connection
	}
	p := c.l.g.cfg.Payloads
	i := int(t.seq % uint64(len(p.list)))
	c.block = c.l.g.h2.tpl.appendBlock(c.block[:0], c.indexed, p.list[i].kind, i, t.seq, p.runID)
	c.indexed = c.indexable
	body := p.list[i].body
	c.check(c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: c.block,
		EndStream: len(body) == 0, EndHeaders: true}))
	c.streams[s.id] = s
	s.pending = body
	c.sendData(s)
	if len(s.pending) > 0 {
		c.blocked = append(c.blocked, s)
	}
}

// sendData sends what the stream's and the connection's windows allow of
// the stream's body, in frames of the peer's maximum size. mu is held.
func (c *h2Conn) sendData(s *h2Stream) {
	for len(s.pending) > 0 {
		n := int(min(int64(len(s.pending)), int64(c.peerFrame), s.sendWin, c.sendWin))
		if n <= 0 {
			return
		}
		c.check(c.fr.WriteData(s.id, n == len(s.pending), s.pending[:n]))
		s.pending = s.pending[n:]
		s.sendWin -= int64(n)
		c.sendWin -= int64(n)
	}
}

// sendBlocked sends what the windows now allow of the bodies waiting for
// them, in the order their streams opened. mu is held.
func (c *h2Conn) sendBlocked() {
	kept := c.blocked[:0]
	for _, s := range c.blocked {
		c.sendData(s)
		if len(s.pending) > 0 {
			kept = append(kept, s)
		}
	}
	clear(c.blocked[len(kept):])
	c.blocked = kept
}

func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) {
	if f.StreamID == 0 {
		c.sendWin += int64(f.Increment)
	} else if s := c.streams[f.StreamID]; s != nil {
		s.sendWin += int64(f.Increment)
	}
	c.sendBlocked()
}

// applySettings takes the server's SETTINGS. mu is held.
func (c *h2Conn) applySettings(f *http2.SettingsFrame) error {
	return f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.limit = int(min(uint32(c.l.g.cfg.Client.Streams), s.Val))
		case http2.SettingInitialWindowSize:
			if s.Val > math.MaxInt32 {
				return errors.New("SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
			}
			delta := int64(s.Val) - c.peerWin
			c.peerWin = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += delta
			}
		case http2.SettingMaxFrameSize:
			c.peerFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			fits := c.l.g.h2.tpl.size <= s.Val
			if c.indexed && !fits {
				return errors.New("the server shrank its HPACK table below the generator's entries")
			}
			c.indexable = fits
		}
		return nil
	})
}
