package h2edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// maxWindow is the largest flow-control window (RFC 9113, 6.9.1).
const maxWindow = 1<<31 - 1

// errConnClosed ends the writes of streams whose connection ended.
var errConnClosed = errors.New("h2edge: connection closed")

// errStreamClosed ends the writes of a stream reset by the peer or by a
// timeout.
var errStreamClosed = errors.New("h2edge: stream closed")

// errTooMuchHeader is the read error of a header block whose frames
// (CONTINUATION floods) carry more than the bound.
var errTooMuchHeader = errors.New("h2edge: header block too large")

// conn is one HTTP/2 connection: its reading loop (serve) and the state
// every stream shares. mu guards everything below it and the framer's
// writes; handlers take it to write and to read their bodies.
type conn struct {
	srv     *Server
	opts    *Options
	c       net.Conn
	ctx     context.Context
	handler http.Handler
	tls     *tls.ConnectionState
	remote  string

	br *bufio.Reader
	rd deadlineReader
	bw *bufio.Writer
	fr *http2.Framer

	mu          sync.Mutex
	closed      bool // the socket is closed, or a write failed
	inBurst     bool // the loop is taking in buffered frames and flushes after them
	streams     map[uint32]*stream
	handlers    int // handlers running, including those of reset streams
	maxStreamID uint32
	goAway      bool // GOAWAY sent (or received): no new streams
	goAwayCode  http2.ErrCode
	sawSettings bool
	unacked     int // our SETTINGS not acknowledged yet

	sendWindow   int64 // the peer's connection window
	initSendWin  int64 // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame int
	recvWindow   int32 // what the peer may still send on the connection
	recvUnacked  int32 // consumed, not yet given back by WINDOW_UPDATE
	henc         *hpack.Encoder
	hbuf         bytes.Buffer
	lower        map[string]string
	canon        map[string]string
	ctrlCount    int
	ctrlWindow   time.Time
	resetCount   int
	resetWindow  time.Time
	idle         *time.Timer
	done         chan struct{}
	handlersDone sync.Cond
}

func newConn(s *Server, ctx context.Context, c net.Conn) *conn {
	cc := &conn{srv: s, opts: &s.opts, c: c, ctx: ctx, handler: s.opts.Handler,
		streams: make(map[uint32]*stream), sendWindow: 65535, initSendWin: 65535,
		peerMaxFrame: 16384, recvWindow: 65535, done: make(chan struct{})}
	if ra := c.RemoteAddr(); ra != nil {
		cc.remote = ra.String()
	}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cc.tls = &st
	}
	cc.handlersDone.L = &cc.mu
	cc.br = bufio.NewReaderSize(c, s.opts.ReadBuffer)
	cc.rd = deadlineReader{cc: cc}
	cc.bw = bufio.NewWriterSize(c, 16<<10)
	cc.fr = http2.NewFramer(cc.bw, &cc.rd)
	cc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cc.fr.MaxHeaderListSize = s.opts.MaxHeaderListSize
	cc.fr.SetMaxReadFrameSize(s.opts.MaxReadFrameSize)
	cc.fr.SetReuseFrames()
	cc.henc = hpack.NewEncoder(&cc.hbuf)
	return cc
}

// deadlineReader sits between the framer and the buffered reader: a read
// that must wait for the socket in the middle of a frame (or of the
// preface) gets ReadHeaderTimeout, one between frames waits without a
// deadline (the idle timer bounds that). It also bounds the bytes one
// ReadFrame may take (a header block and its CONTINUATION frames).
type deadlineReader struct {
	cc       *conn
	boundary bool // the next byte starts a frame
	deadline bool // a read deadline is set
	n        int  // bytes read in this ReadFrame
	limit    int
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	cc := r.cc
	if cc.br.Buffered() == 0 && cc.opts.ReadHeaderTimeout > 0 {
		if r.boundary && r.deadline {
			_ = cc.c.SetReadDeadline(time.Time{})
			r.deadline = false
		} else if !r.boundary && !r.deadline {
			_ = cc.c.SetReadDeadline(time.Now().Add(cc.opts.ReadHeaderTimeout))
			r.deadline = true
		}
	}
	if r.limit > 0 && r.n+len(p) > r.limit {
		if r.n >= r.limit {
			return 0, errTooMuchHeader
		}
		p = p[:r.limit-r.n]
	}
	n, err := cc.br.Read(p)
	r.n += n
	if n > 0 {
		r.boundary = false
	}
	return n, err
}

// serve runs the connection's reading loop until the connection ends.
func (cc *conn) serve(sawPreface bool) {
	defer cc.shut()
	if !sawPreface {
		var b [len(clientPreface)]byte
		if _, err := io.ReadFull(&cc.rd, b[:]); err != nil || string(b[:]) != clientPreface {
			cc.mu.Lock()
			cc.writeGoAway(http2.ErrCodeProtocol)
			cc.flushLocked()
			cc.mu.Unlock()
			return
		}
	}
	cc.mu.Lock()
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: cc.opts.MaxConcurrentStreams},
		{ID: http2.SettingInitialWindowSize, Val: uint32(cc.opts.InitialWindowSize)},
		{ID: http2.SettingMaxFrameSize, Val: cc.opts.MaxReadFrameSize},
		{ID: http2.SettingMaxHeaderListSize, Val: cc.opts.MaxHeaderListSize},
	}
	_ = cc.fr.WriteSettings(settings...)
	cc.unacked++
	if d := cc.opts.ConnWindowSize - 65535; d > 0 {
		_ = cc.fr.WriteWindowUpdate(0, uint32(d))
		cc.recvWindow += d
	}
	cc.flushLocked()
	if cc.opts.IdleTimeout > 0 {
		cc.idle = time.AfterFunc(cc.opts.IdleTimeout, cc.onIdle)
	}
	cc.mu.Unlock()

	limit := int(cc.opts.MaxReadFrameSize) + 9
	if hl := 2*int(cc.opts.MaxHeaderListSize) + 16<<10; hl > limit {
		limit = hl
	}
	for {
		cc.rd.boundary, cc.rd.n, cc.rd.limit = true, 0, limit
		f, err := cc.fr.ReadFrame()
		cc.mu.Lock()
		cc.inBurst = true
		ok := cc.process(f, err)
		if cc.br.Buffered() == 0 || !ok {
			cc.inBurst = false
			cc.flushLocked()
		}
		stop := !ok || cc.closed
		cc.mu.Unlock()
		if stop {
			return
		}
	}
}

// process takes in one frame, or the error that came instead; false ends
// the connection.
func (cc *conn) process(f http2.Frame, err error) bool {
	if err == nil {
		err = cc.processFrame(f)
		if err == nil {
			return true
		}
	}
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		cc.count("stream_error")
		cc.resetStream(se.StreamID, se.Code)
		return true
	case errors.As(err, &ce):
		if f != nil && f.Header().StreamID > cc.maxStreamID && f.Header().StreamID%2 == 1 {
			cc.maxStreamID = f.Header().StreamID
		}
		cc.count("conn_error")
		cc.writeGoAway(http2.ErrCode(ce))
		return false
	case errors.Is(err, http2.ErrFrameTooLarge):
		cc.count("frame_too_large")
		cc.writeGoAway(http2.ErrCodeFrameSize)
		return false
	case errors.Is(err, errTooMuchHeader):
		cc.count("header_flood")
		cc.writeGoAway(http2.ErrCodeEnhanceYourCalm)
		return false
	case errors.Is(err, errCalm):
		cc.writeGoAway(http2.ErrCodeEnhanceYourCalm)
		return false
	default:
		if cc.opts.Logger != nil && !errors.Is(err, io.EOF) {
			cc.opts.Logger.Debug("h2edge: connection ends", "remote", cc.remote, "err", err)
		}
		return false
	}
}

// errCalm ends a connection that abuses the protocol (floods, rapid
// reset) with GOAWAY ENHANCE_YOUR_CALM.
var errCalm = errors.New("h2edge: enhance your calm")

func (cc *conn) count(name string) {
	if cc.opts.OnError != nil {
		cc.opts.OnError(name)
	}
}

func (cc *conn) processFrame(f http2.Frame) error {
	if !cc.sawSettings {
		if _, ok := f.(*http2.SettingsFrame); !ok {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		cc.sawSettings = true
	}
	if cc.goAway && (cc.goAwayCode != http2.ErrCodeNo || f.Header().StreamID > cc.maxStreamID) {
		if d, ok := f.(*http2.DataFrame); ok {
			if int32(d.Length) > cc.recvWindow {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			cc.recvWindow -= int32(d.Length)
			cc.giveBack(nil, int32(d.Length))
		}
		return nil
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return cc.processSettings(f)
	case *http2.MetaHeadersFrame:
		return cc.processHeaders(f)
	case *http2.DataFrame:
		return cc.processData(f)
	case *http2.WindowUpdateFrame:
		return cc.processWindowUpdate(f)
	case *http2.PingFrame:
		return cc.processPing(f)
	case *http2.RSTStreamFrame:
		return cc.processReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil
	case *http2.GoAwayFrame:
		cc.startShutdownLocked()
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	default:
		return nil // unknown frame types are ignored
	}
}

// controlFrame counts a PING or SETTINGS frame that asks for an answer.
func (cc *conn) controlFrame() error {
	if cc.opts.ControlFrameLimit < 0 {
		return nil
	}
	now := time.Now()
	if now.Sub(cc.ctrlWindow) >= time.Second {
		cc.ctrlWindow, cc.ctrlCount = now, 0
	}
	cc.ctrlCount++
	if cc.ctrlCount > cc.opts.ControlFrameLimit {
		cc.count("control_flood")
		return errCalm
	}
	return nil
}

func (cc *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		cc.unacked--
		if cc.unacked < 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	if err := cc.controlFrame(); err != nil {
		return err
	}
	// Repeated settings are taken in order (RFC 9113, 6.5.3), not refused.
	if f.NumSettings() > 100 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if err := f.ForeachSetting(cc.processSetting); err != nil {
		return err
	}
	_ = cc.fr.WriteSettingsAck()
	return nil
}

func (cc *conn) processSetting(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		return err
	}
	switch s.ID {
	case http2.SettingHeaderTableSize:
		cc.henc.SetMaxDynamicTableSize(s.Val)
	case http2.SettingInitialWindowSize:
		delta := int64(s.Val) - cc.initSendWin
		cc.initSendWin = int64(s.Val)
		for _, st := range cc.streams {
			st.sendWindow += delta
			if st.sendWindow > maxWindow {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			st.cond.Broadcast()
		}
	case http2.SettingMaxFrameSize:
		cc.peerMaxFrame = int(s.Val)
	}
	return nil
}

func (cc *conn) processPing(f *http2.PingFrame) error {
	if f.IsAck() {
		return nil
	}
	if f.StreamID != 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if err := cc.controlFrame(); err != nil {
		return err
	}
	_ = cc.fr.WritePing(true, f.Data)
	return nil
}

// streamState answers for a stream id that may be in no map: idle (never
// opened) or closed.
func (cc *conn) idleID(id uint32) bool {
	return id%2 == 0 || id > cc.maxStreamID
}

func (cc *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	if f.StreamID == 0 {
		cc.sendWindow += int64(f.Increment)
		if cc.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		for _, st := range cc.streams {
			if st.waiting {
				st.cond.Broadcast()
			}
		}
		return nil
	}
	st := cc.streams[f.StreamID]
	if st == nil {
		if cc.idleID(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	st.cond.Broadcast()
	return nil
}

func (cc *conn) processReset(f *http2.RSTStreamFrame) error {
	st := cc.streams[f.StreamID]
	if st == nil {
		if cc.idleID(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	if !st.handlerDone && cc.opts.MaxEarlyResets >= 0 {
		now := time.Now()
		if now.Sub(cc.resetWindow) >= time.Second {
			cc.resetWindow, cc.resetCount = now, 0
		}
		cc.resetCount++
		if cc.resetCount > cc.opts.MaxEarlyResets {
			cc.count("rapid_reset")
			cc.closeStream(st, errStreamClosed)
			return errCalm
		}
	}
	cc.closeStream(st, errStreamClosed)
	return nil
}

func (cc *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	st := cc.streams[id]
	if st == nil && cc.idleID(id) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	length := int32(f.Length)
	if length > cc.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	if st == nil || st.remoteClosed {
		cc.recvWindow -= length
		cc.giveBack(nil, length)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if length > st.recvWindow {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	cc.recvWindow -= length
	st.recvWindow -= length
	data := f.Data()
	st.bodyBytes += int64(len(data))
	if st.declLen >= 0 && st.bodyBytes > st.declLen {
		cc.giveBack(nil, length)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if pad := length - int32(len(data)); pad > 0 {
		cc.giveBack(st, pad)
	}
	if st.bodyClosed || !st.hasBody {
		cc.giveBack(nil, int32(len(data)))
	} else {
		st.body = append(st.body, data...)
		st.cond.Broadcast()
	}
	if f.StreamEnded() {
		return cc.endRemote(st)
	}
	return nil
}

// endRemote takes in the client's END_STREAM.
func (cc *conn) endRemote(st *stream) error {
	if st.declLen >= 0 && st.bodyBytes != st.declLen {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	st.remoteClosed = true
	st.bodyEOF = true
	st.cond.Broadcast()
	if st.localClosed {
		cc.removeStream(st)
	}
	return nil
}

// giveBack returns n consumed bytes to the connection's window and, with
// st, to the stream's, by WINDOW_UPDATE once half a window is owed.
func (cc *conn) giveBack(st *stream, n int32) {
	if n <= 0 || cc.closed {
		return
	}
	cc.recvUnacked += n
	if cc.recvUnacked >= cc.opts.ConnWindowSize/2 || cc.recvWindow < cc.opts.ConnWindowSize/2 {
		_ = cc.fr.WriteWindowUpdate(0, uint32(cc.recvUnacked))
		cc.recvWindow += cc.recvUnacked
		cc.recvUnacked = 0
	}
	if st == nil || st.remoteClosed || st.reset {
		return
	}
	st.recvUnacked += n
	if st.recvUnacked >= cc.opts.InitialWindowSize/2 || st.recvWindow < cc.opts.InitialWindowSize/2 {
		_ = cc.fr.WriteWindowUpdate(st.id, uint32(st.recvUnacked))
		st.recvWindow += st.recvUnacked
		st.recvUnacked = 0
	}
}

// resetStream sends RST_STREAM for id and closes the stream if it is open.
func (cc *conn) resetStream(id uint32, code http2.ErrCode) {
	if !cc.closed {
		_ = cc.fr.WriteRSTStream(id, code)
	}
	if st := cc.streams[id]; st != nil {
		cc.closeStream(st, errStreamClosed)
	}
}

// closeStream ends st at once: its handler's context is canceled, its
// body and its writes fail.
func (cc *conn) closeStream(st *stream, err error) {
	st.reset = true
	st.localClosed, st.remoteClosed = true, true
	if st.bodyErr == nil {
		st.bodyErr = err
	}
	if n := int32(len(st.body) - st.bodyOff); n > 0 {
		st.body, st.bodyOff = nil, 0
		cc.giveBack(nil, n)
	}
	st.cond.Broadcast()
	if st.cancel != nil {
		st.cancel()
	}
	cc.removeStream(st)
}

// removeStream forgets a stream both sides are done with.
func (cc *conn) removeStream(st *stream) {
	if cc.streams[st.id] != st {
		return
	}
	delete(cc.streams, st.id)
	if st.timer != nil {
		st.timer.Stop()
	}
	if len(cc.streams) == 0 {
		if cc.goAway {
			cc.closeLocked()
		} else if cc.idle != nil {
			cc.idle.Reset(cc.opts.IdleTimeout)
		}
	}
}

func (cc *conn) writeGoAway(code http2.ErrCode) {
	if cc.closed {
		return
	}
	if !cc.goAway || code != http2.ErrCodeNo {
		_ = cc.fr.WriteGoAway(cc.maxStreamID, code, nil)
	}
	cc.goAway, cc.goAwayCode = true, code
}

// startShutdown sends GOAWAY NO_ERROR with the last stream id; the
// connection closes once its streams are done.
func (cc *conn) startShutdown() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.startShutdownLocked()
	if !cc.inBurst {
		cc.flushLocked()
	}
}

func (cc *conn) startShutdownLocked() {
	if cc.goAway {
		return
	}
	cc.writeGoAway(http2.ErrCodeNo)
	if len(cc.streams) == 0 {
		cc.closeLocked()
	}
}

func (cc *conn) onIdle() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.streams) > 0 || cc.closed {
		return
	}
	cc.count("idle_timeout")
	cc.writeGoAway(http2.ErrCodeNo)
	cc.closeLocked()
}

// flushLocked sends what the framer wrote; a failed write closes the
// connection.
func (cc *conn) flushLocked() {
	if cc.closed {
		return
	}
	if err := cc.bw.Flush(); err != nil {
		cc.closeLocked()
	}
}

// closeLocked sends what is buffered and closes the socket; the reading
// loop ends on its next read.
func (cc *conn) closeLocked() {
	if cc.closed {
		return
	}
	_ = cc.bw.Flush()
	cc.closed = true
	_ = cc.c.Close()
}

// shut ends the connection when its reading loop ends: every stream is
// closed, handlers see their contexts canceled and their writes fail.
func (cc *conn) shut() {
	cc.mu.Lock()
	cc.inBurst = false
	cc.closeLocked()
	for _, st := range cc.streams {
		cc.closeStream(st, errConnClosed)
	}
	if cc.idle != nil {
		cc.idle.Stop()
	}
	for cc.handlers > 0 {
		cc.handlersDone.Wait()
	}
	cc.mu.Unlock()
}
