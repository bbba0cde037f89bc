package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The flow-control windows the generator gives the server for its answers,
// and the bounds of a connection.
const (
	h2StreamWindow = 1 << 20
	h2ConnWindow   = 1 << 24
	// h2DefaultWindow is every window's size before SETTINGS change it.
	h2DefaultWindow = 65535
	h2DefaultFrame  = 16384
	// h2TableSize is the HPACK table size both ends start with.
	h2TableSize = 4096
	// h2LastStreamID is the highest client stream id; a connection that
	// reaches it is replaced.
	h2LastStreamID = 1<<31 - 1
	// h2MaxRetries bounds the retries of a request the server refused
	// (REFUSED_STREAM) or did not process (past a GOAWAY's last stream).
	h2MaxRetries = 5
	// h2HandshakeTimeout bounds dialling and the SETTINGS exchange.
	h2HandshakeTimeout = 5 * time.Second
)

// Why a connection ended, when it was not the server.
var (
	errConnDone     = errors.New("loadgen: connection finished")
	errDrainTimeout = errors.New("no answer within the drain timeout")
)

// h2Conn is one HTTP/2 connection of the generator, on a raw framer: no
// goroutine per request, no request or response objects. One goroutine
// reads frames, records each answer at its END_STREAM and, in a closed-loop
// run, writes the next request at once; it flushes what was written when
// no complete frame is left to read, so a burst of answers becomes one
// write of the requests that follow them. An open-loop run adds a second
// goroutine that takes tickets from the schedule while the connection has a
// free stream ([h2Conn.feed]). Writes and the state below mu are shared
// between the two.
type h2Conn struct {
	l   *h2Lane
	nc  net.Conn
	br  *bufio.Reader
	fr  *http2.Framer
	dec *hpack.Decoder
	// Reader goroutine only: the header block being decoded and the
	// answer bytes not yet credited to the connection's window.
	hdrStatus int
	hdrRetry  time.Duration // the block's Retry-After, negative without one
	hdrStream uint32
	hdrEnd    bool
	recvConn  uint32
	// done is closed once the connection ends (see shut).
	done chan struct{}

	mu   sync.Mutex
	wake sync.Cond // a stream freed or the connection ended
	bw   *bufio.Writer
	// werr is the first write error; err why the connection ended.
	werr, err error
	block     []byte // the header block being written
	// indexable tells whether the peer's HPACK table can hold the
	// template's shared entries, indexed whether it does.
	indexable, indexed bool
	nextID             uint32
	streams            map[uint32]*h2Stream
	free               []*h2Stream
	limit              int   // streams in flight: min(Streams, the peer's)
	sendWin            int64 // the connection's send window
	peerWin            int64 // the peer's initial stream window
	peerFrame          int
	blocked            []*h2Stream // streams whose body waits for window
	// goaway stops new streams: the server sent GOAWAY, or the stream ids
	// ran out. srcDone: no more tickets will come.
	goaway, srcDone bool
	// queued are tickets to send before new ones (retries); retry those
	// to send on the next connection.
	queued, retry []ticket
	// backingOff counts the streams waiting out a [Backoff] after a
	// refusal: they count against limit. woken are the refusal streaks of
	// those whose wait is over, for the next requests they send.
	backingOff int
	woken      []int
}

// h2Stream is one request in flight.
type h2Stream struct {
	id          uint32
	t           ticket
	status      int
	retryAfter  time.Duration
	body        []byte // the answer, when its ids are collected
	pending     []byte // the part of the request body not yet sent
	sendWin     int64
	recvUnacked uint32
}

// dialH2 opens a connection to the lane's target and exchanges SETTINGS.
func dialH2(ctx context.Context, l *h2Lane) (*h2Conn, error) {
	tg := l.g.h2
	ctx, cancel := context.WithTimeout(ctx, h2HandshakeTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", tg.addr)
	if err != nil {
		return nil, err
	}
	if tg.tls != nil {
		tc := tls.Client(nc, tg.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			_ = nc.Close()
			return nil, fmt.Errorf("the server chose protocol %q, not h2", p)
		}
		nc = tc
	}
	c := &h2Conn{l: l, nc: nc, done: make(chan struct{}), streams: map[uint32]*h2Stream{}, nextID: 1,
		limit: l.g.cfg.Client.Streams, sendWin: h2DefaultWindow, peerWin: h2DefaultWindow, peerFrame: h2DefaultFrame,
		indexable: tg.tpl.size <= h2TableSize}
	c.wake.L = &c.mu
	c.bw = bufio.NewWriterSize(nc, 32<<10)
	c.br = bufio.NewReaderSize(nc, 64<<10)
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.SetReuseFrames()
	c.dec = hpack.NewDecoder(h2TableSize, c.onField)
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	if err := c.handshake(); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("HTTP/2 handshake: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// handshake sends the preface, SETTINGS and the connection window, then
// reads the server's SETTINGS (its first frame) and acknowledges it.
func (c *h2Conn) handshake() error {
	_, _ = c.bw.WriteString(http2.ClientPreface)
	_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow})
	_ = c.fr.WriteWindowUpdate(0, h2ConnWindow-h2DefaultWindow)
	if err := c.bw.Flush(); err != nil {
		return err
	}
	f, err := c.fr.ReadFrame()
	if err != nil {
		return err
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return fmt.Errorf("the server's first frame is %v, not SETTINGS", f.Header().Type)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.applySettings(sf); err != nil {
		return err
	}
	_ = c.fr.WriteSettingsAck()
	return c.bw.Flush()
}

// onField is the HPACK decoder's callback: of an answer's fields, only
// :status and Retry-After matter.
func (c *h2Conn) onField(f hpack.HeaderField) {
	if f.Name == "retry-after" {
		c.hdrRetry = parseRetryAfter(f.Value)
		return
	}
	if f.Name != ":status" || len(f.Value) != 3 {
		return
	}
	n := 0
	for i := range 3 {
		d := f.Value[i] - '0'
		if d > 9 {
			return
		}
		n = n*10 + int(d)
	}
	c.hdrStatus = n
}

// readLoop reads and handles frames until the connection ends or has
// nothing left to do; it returns the read error, nil on a normal end.
func (c *h2Conn) readLoop() error {
	for {
		if !c.frameBuffered() {
			if err := c.flush(); err != nil {
				return err
			}
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		if err := c.handle(f); err != nil {
			return err
		}
		if c.finished() {
			return nil
		}
	}
}

// frameBuffered tells whether a whole frame waits in the read buffer:
// until none does, what the handlers wrote can wait for more.
func (c *h2Conn) frameBuffered() bool {
	n := c.br.Buffered()
	if n < 9 {
		return false
	}
	h, _ := c.br.Peek(9)
	return n >= 9+(int(h[0])<<16|int(h[1])<<8|int(h[2]))
}

func (c *h2Conn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *h2Conn) flushLocked() error {
	if c.werr == nil && c.bw.Buffered() > 0 {
		c.werr = c.bw.Flush()
	}
	return c.werr
}

// finished tells whether the connection has no stream left and will open
// none.
func (c *h2Conn) finished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return (c.goaway || c.srcDone) && len(c.streams) == 0 && len(c.queued) == 0
}

// shut ends the connection for err (the first cause wins) and wakes its
// goroutines. mu is held.
func (c *h2Conn) shut(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	_ = c.nc.Close()
	close(c.done)
	c.wake.Broadcast()
}

// handle processes one frame.
func (c *h2Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.HeadersFrame:
		c.hdrStatus, c.hdrRetry, c.hdrStream, c.hdrEnd = 0, -1, f.StreamID, f.StreamEnded()
		return c.headerBlock(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.ContinuationFrame:
		return c.headerBlock(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.PushPromiseFrame:
		return errors.New("PUSH_PROMISE though push is disabled")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch f := f.(type) {
	case *http2.DataFrame:
		c.onData(f)
	case *http2.RSTStreamFrame:
		c.onReset(f)
	case *http2.SettingsFrame:
		if !f.IsAck() {
			if err := c.applySettings(f); err != nil {
				return err
			}
			c.check(c.fr.WriteSettingsAck())
			c.sendBlocked()
			c.wake.Broadcast()
		}
	case *http2.WindowUpdateFrame:
		c.onWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.check(c.fr.WritePing(true, f.Data))
		}
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	}
	c.l.fill(c)
	return c.werr
}

// headerBlock decodes a fragment of an answer's header block; at the end
// of the block the stream gets its status, and ends if the block ends it.
// Every block is decoded, whatever its stream, to keep the HPACK table in
// step with the server's.
func (c *h2Conn) headerBlock(frag []byte, end bool) error {
	if _, err := c.dec.Write(frag); err != nil {
		return fmt.Errorf("decoding an answer's headers: %w", err)
	}
	if !end {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return fmt.Errorf("decoding an answer's headers: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[c.hdrStream]
	if s == nil {
		return nil
	}
	if s.status == 0 && c.hdrStatus >= 200 {
		s.status = c.hdrStatus // 1xx answers are skipped; trailers keep it
		s.retryAfter = c.hdrRetry
	}
	if c.hdrEnd {
		var err error
		if s.status == 0 {
			err = errors.New("answer without a final :status")
		}
		c.complete(s, err)
	}
	c.l.fill(c)
	return c.werr
}

func (c *h2Conn) onData(f *http2.DataFrame) {
	n := f.Header().Length // padding included: it counts against the window
	c.recvConn += n
	if s := c.streams[f.StreamID]; s != nil {
		if c.l.collects(s) {
			s.body = append(s.body, f.Data()...)
		}
		s.recvUnacked += n
		switch {
		case f.StreamEnded():
			c.complete(s, nil)
		case s.recvUnacked >= h2StreamWindow/2:
			c.check(c.fr.WriteWindowUpdate(s.id, s.recvUnacked))
			s.recvUnacked = 0
		}
	}
	if c.recvConn >= h2ConnWindow/4 {
		c.check(c.fr.WriteWindowUpdate(0, c.recvConn))
		c.recvConn = 0
	}
}

// onReset ends a stream the server reset. A refused stream was not
// processed and is sent again (RFC 9113 §8.7), up to h2MaxRetries times.
func (c *h2Conn) onReset(f *http2.RSTStreamFrame) {
	s := c.streams[f.StreamID]
	if s == nil {
		return
	}
	if f.ErrCode == http2.ErrCodeRefusedStream {
		t := s.t
		c.release(s)
		c.wake.Signal()
		if c.goaway {
			c.retryLater(t)
			return
		}
		if t.tries >= h2MaxRetries {
			c.l.fail(t, errors.New("stream refused by the server, retries exhausted"))
			return
		}
		t.tries++
		c.l.g.retried.Add(1)
		c.queued = append(c.queued, t) // sent again by fill
		return
	}
	c.complete(s, fmt.Errorf("stream reset by the server: %v", f.ErrCode))
}

// onGoAway stops new streams; those past the server's last stream were
// not processed and go to the next connection.
func (c *h2Conn) onGoAway(f *http2.GoAwayFrame) {
	c.l.g.goaways.Add(1)
	c.goaway = true
	for id, s := range c.streams {
		if id > f.LastStreamID {
			t := s.t
			c.release(s)
			c.retryLater(t)
		}
	}
	for _, t := range c.queued {
		c.retryLater(t)
	}
	c.queued = nil
	c.wake.Broadcast()
}

// retryLater keeps t for the next connection, or fails it when it has been
// tried too often.
func (c *h2Conn) retryLater(t ticket) {
	if t.tries >= h2MaxRetries {
		c.l.fail(t, errors.New("not processed by the server, retries exhausted"))
		return
	}
	t.tries++
	c.l.g.retried.Add(1)
	c.retry = append(c.retry, t)
}

// complete records a stream's outcome and frees it. mu is held.
func (c *h2Conn) complete(s *h2Stream, err error) {
	if len(s.pending) > 0 && err == nil {
		// Answered before the whole body was sent: stop sending it.
		c.check(c.fr.WriteRSTStream(s.id, http2.ErrCodeCancel))
	}
	if err != nil {
		c.l.fail(s.t, err)
	} else {
		c.l.answer(s, time.Since(s.t.intended))
	}
	t, status, retryAfter := s.t, s.status, s.retryAfter
	c.release(s)
	c.wake.Signal()
	if err == nil && c.l.tickets == nil && c.l.g.cfg.Backoff.On() && classify(status) == classShed {
		c.backOff(t.sheds+1, retryAfter)
	}
}

// backOff keeps a closed-loop stream whose request was refused, the
// sheds-th in a row, idle for its [Backoff]; then [h2Conn.resume] sends its
// next request. mu is held.
func (c *h2Conn) backOff(sheds int, retryAfter time.Duration) {
	c.backingOff++
	time.AfterFunc(c.l.g.cfg.Backoff.pause(sheds, retryAfter), func() { c.resume(sheds) })
}

// resume ends a stream's backoff: the connection sends its next request,
// unless the connection or the run is over first. It runs on a timer's
// goroutine, so it flushes what it wrote: the reader may be waiting for a
// frame that only this request will bring.
func (c *h2Conn) resume(sheds int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backingOff--
	if c.err != nil {
		return
	}
	c.woken = append(c.woken, sheds)
	c.l.fill(c)
	if c.srcDone && len(c.streams) == 0 && len(c.queued) == 0 {
		c.shut(errConnDone) // nothing in flight will wake the reader
		return
	}
	if err := c.flushLocked(); err != nil {
		c.shut(err)
	}
}

// release forgets a stream and keeps it for reuse. mu is held.
func (c *h2Conn) release(s *h2Stream) {
	delete(c.streams, s.id)
	if len(s.pending) > 0 {
		s.pending = nil
		c.blocked = removeStream(c.blocked, s)
	}
	s.body, s.status, s.recvUnacked = s.body[:0], 0, 0
	c.free = append(c.free, s)
}

func removeStream(list []*h2Stream, s *h2Stream) []*h2Stream {
	for i, b := range list {
		if b == s {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// check keeps the first write error; the reader ends the connection on
// it. mu is held.
func (c *h2Conn) check(err error) {
	if err != nil && c.werr == nil {
		c.werr = err
	}
}
