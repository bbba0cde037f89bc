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
	"runtime/debug"
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
	hb *blockReader // decodes the header blocks the framer reads

	mu          sync.Mutex
	closed      bool      // the socket is closed, or a write failed
	inBurst     bool      // the loop is taking in buffered frames and flushes after them
	burstAt     time.Time // when the loop began the burst: the arrival time of its requests
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
	hgen         uint64      // moved on by every field encoded and table size change (see answerCache)
	acache       answerCache // the last fast answer's header block
	clbuf        [32]byte    // scratch for a content-length field
	lower        map[string]string
	canon        map[string]string
	ctrlCount    int
	ctrlWindow   time.Time
	resetCount   int
	resetWindow  time.Time
	idle         *time.Timer
	done         chan struct{} // closed when the connection has ended
	handlersDone sync.Cond

	fast      fastQueue   // answers of fast streams given from other goroutines
	fastTimer *time.Timer // the body deadline of fast streams
	fastAt    time.Time   // when fastTimer fires; zero: stopped
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
	cc.hb = newBlockReader(s.opts.MaxHeaderListSize)
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

	hdr    [9]byte // the frame header being read
	hn     int
	remain int     // payload bytes (or preface bytes) still to pass
	last   [9]byte // the last frame header read whole
}

// track follows the frame headers in b, the bytes just read, so that an
// error of the Framer can be named by the frame that caused it.
func (r *deadlineReader) track(b []byte) {
	for len(b) > 0 {
		if r.remain > 0 {
			k := min(r.remain, len(b))
			r.remain -= k
			b = b[k:]
			continue
		}
		k := copy(r.hdr[r.hn:], b)
		r.hn += k
		b = b[k:]
		if r.hn == len(r.hdr) {
			r.last, r.hn = r.hdr, 0
			r.remain = int(r.hdr[0])<<16 | int(r.hdr[1])<<8 | int(r.hdr[2])
		}
	}
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	cc := r.cc
	if cc.br.Buffered() == 0 && !r.boundary {
		// About to wait for the rest of a frame: what the burst so far
		// owes the peer leaves first, or it could wait on us.
		cc.mu.Lock()
		if cc.inBurst {
			cc.inBurst = false
			cc.writeAnswersLocked()
			cc.flushLocked()
		}
		cc.mu.Unlock()
	}
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
	r.track(p[:n])
	if n > 0 {
		r.boundary = false
	}
	return n, err
}

// serve runs the connection's reading loop until the connection ends.
func (cc *conn) serve(sawPreface bool) {
	defer cc.shut()
	if !sawPreface {
		cc.rd.remain = len(clientPreface)
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
	if cc.opts.EnableConnectProtocol {
		settings = append(settings, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
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
		if hf, ok := f.(*http2.HeadersFrame); ok && err == nil {
			f, err = cc.hb.read(cc.fr, hf)
		}
		cc.mu.Lock()
		if !cc.inBurst {
			cc.burstAt = time.Now() // one clock read for the frames of a read burst
		}
		cc.inBurst = true
		ok := false
		cc.guard("taking in a frame", func() { ok = cc.process(f, err) })
		if cc.br.Buffered() == 0 || !ok {
			cc.inBurst = false
			if ok {
				cc.writeAnswersLocked()
			}
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
		if f == nil {
			cc.countFrameError(se.Code)
		}
		cc.resetStream(se.StreamID, se.Code)
		return true
	case errors.As(err, &ce):
		if f != nil && f.Header().StreamID > cc.maxStreamID && f.Header().StreamID%2 == 1 {
			cc.maxStreamID = f.Header().StreamID
		}
		if f == nil {
			cc.countFrameError(http2.ErrCode(ce))
		}
		cc.writeGoAway(http2.ErrCode(ce))
		return false
	case errors.Is(err, http2.ErrFrameTooLarge):
		cc.count("conn_FRAME_SIZE_ERROR_frame_too_large")
		cc.writeGoAway(http2.ErrCodeFrameSize)
		return false
	case errors.Is(err, errTooMuchHeader):
		cc.count("conn_ENHANCE_YOUR_CALM_header_flood")
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

// goAwayTimeout is how long a connection stays open after the client's
// GOAWAY.
const goAwayTimeout = time.Second

// errCalm ends a connection that abuses the protocol (floods, rapid
// reset) with GOAWAY ENHANCE_YOUR_CALM.
var errCalm = errors.New("h2edge: enhance your calm")

// connErr counts a connection error under net/http's name for it
// (sluice_gateway_http2_errors_total's reasons) and returns it.
func (cc *conn) connErr(token string, code http2.ErrCode) error {
	if cc.opts.OnError != nil {
		cc.opts.OnError("conn_" + code.String() + "_" + token)
	}
	return http2.ConnectionError(code)
}

// streamErr is connErr for a stream error.
func (cc *conn) streamErr(token string, id uint32, code http2.ErrCode) error {
	if cc.opts.OnError != nil {
		cc.opts.OnError("stream_" + code.String() + "_" + token)
	}
	return http2.StreamError{StreamID: id, Code: code}
}

func (cc *conn) count(name string) {
	if cc.opts.OnError != nil {
		cc.opts.OnError(name)
	}
}

func (cc *conn) processFrame(f http2.Frame) error {
	if !cc.sawSettings {
		if _, ok := f.(*http2.SettingsFrame); !ok {
			return cc.connErr("first_settings", http2.ErrCodeProtocol)
		}
		cc.sawSettings = true
	}
	if cc.goAway && (cc.goAwayCode != http2.ErrCodeNo || f.Header().StreamID > cc.maxStreamID) {
		if d, ok := f.(*http2.DataFrame); ok {
			if int32(d.Length) > cc.recvWindow {
				return cc.connErr("data_flow", http2.ErrCodeFlowControl)
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
			return cc.streamErr("priority", f.StreamID, http2.ErrCodeProtocol)
		}
		return nil
	case *http2.GoAwayFrame:
		// The client leaves: no new streams; the connection closes once
		// its streams are done, and at most goAwayTimeout after this
		// (closing at once would reset what it still sends, PINGs say).
		if !cc.goAway {
			cc.writeGoAway(http2.ErrCodeNo)
			time.AfterFunc(goAwayTimeout, func() {
				cc.mu.Lock()
				defer cc.mu.Unlock()
				cc.closeLocked()
			})
		}
		return nil
	case *http2.PushPromiseFrame:
		return cc.connErr("push_promise", http2.ErrCodeProtocol)
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
			return cc.connErr("ack_mystery", http2.ErrCodeProtocol)
		}
		return nil
	}
	if err := cc.controlFrame(); err != nil {
		return err
	}
	// Repeated settings are taken in order (RFC 9113, 6.5.3), not refused.
	if f.NumSettings() > 100 {
		return cc.connErr("settings_big_or_dups", http2.ErrCodeProtocol)
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
		cc.hgen++ // the next block starts with the size update: not from the cache
	case http2.SettingInitialWindowSize:
		delta := int64(s.Val) - cc.initSendWin
		cc.initSendWin = int64(s.Val)
		for _, st := range cc.streams {
			st.sendWindow += delta
			if st.sendWindow > maxWindow {
				return cc.connErr("setting_win_size", http2.ErrCodeFlowControl)
			}
			st.cond.Broadcast()
		}
		if delta > 0 {
			cc.sendPending(nil)
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
		return cc.connErr("ping_on_stream", http2.ErrCodeProtocol)
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
			return cc.connErr("conn_flow", http2.ErrCodeFlowControl)
		}
		for _, st := range cc.streams {
			if st.waiting {
				st.cond.Broadcast()
			}
		}
		cc.sendPending(nil)
		return nil
	}
	st := cc.streams[f.StreamID]
	if st == nil {
		if cc.idleID(f.StreamID) {
			return cc.connErr("stream_idle", http2.ErrCodeProtocol)
		}
		return nil
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > maxWindow {
		return cc.streamErr("bad_flow", f.StreamID, http2.ErrCodeFlowControl)
	}
	st.cond.Broadcast()
	cc.sendPending(st)
	return nil
}

func (cc *conn) processReset(f *http2.RSTStreamFrame) error {
	st := cc.streams[f.StreamID]
	if st == nil {
		if cc.idleID(f.StreamID) {
			return cc.connErr("reset_idle_stream", http2.ErrCodeProtocol)
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
			cc.count("conn_ENHANCE_YOUR_CALM_too_many_early_resets")
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
		return cc.connErr("data_on_idle", http2.ErrCodeProtocol)
	}
	length := int32(f.Length)
	if length > cc.recvWindow {
		return cc.connErr("data_flow", http2.ErrCodeFlowControl)
	}
	if st == nil || st.remoteClosed {
		cc.recvWindow -= length
		cc.giveBack(nil, length)
		return cc.streamErr("closed", id, http2.ErrCodeStreamClosed)
	}
	if length > st.recvWindow {
		return cc.streamErr("flow_on_data_length", id, http2.ErrCodeFlowControl)
	}
	cc.recvWindow -= length
	st.recvWindow -= length
	data := f.Data()
	st.bodyBytes += int64(len(data))
	if st.declLen >= 0 && st.bodyBytes > st.declLen {
		cc.giveBack(nil, length)
		return cc.streamErr("send_too_much", id, http2.ErrCodeProtocol)
	}
	if pad := length - int32(len(data)); pad > 0 {
		cc.giveBack(st, pad)
	}
	if st.abandoned() {
		cc.giveBack(nil, int32(len(data)))
		_ = cc.fr.WriteRSTStream(id, http2.ErrCodeNo)
		cc.closeStream(st, errStreamClosed)
		return nil
	}
	if st.fast != nil {
		cc.fastData(st.fast, data)
	} else if st.bodyClosed || !st.hasBody {
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
		if !st.answered {
			return cc.streamErr("content_length_mismatch", st.id, http2.ErrCodeProtocol)
		}
		// Answered already (a refusal that did not read the body): the
		// client stopped sending, the stream ends without a reset, as
		// some clients (curl 7.88) take a reset for a failure.
		if st.bodyErr == nil {
			st.bodyErr = errors.New("h2edge: request body shorter than its content-length")
		}
	}
	st.remoteClosed = true
	st.bodyEOF = true
	st.cond.Broadcast()
	if st.fast != nil {
		cc.endFast(st.fast, nil)
	}
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
	if st.fast != nil {
		cc.abortFast(st.fast)
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
	if st.rtimer != nil {
		st.rtimer.Stop()
	}
	if len(cc.streams) == 0 {
		if cc.goAway {
			cc.closeLocked()
		} else if cc.idle != nil {
			cc.idle.Reset(cc.opts.IdleTimeout)
		}
	}
	if fs := st.fast; fs != nil {
		fs.removed = true
		if fs.settled {
			recycle(fs)
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
	cc.resetAbandoned(true)
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
	if cc.fastTimer != nil {
		cc.fastTimer.Stop()
	}
	close(cc.done)
	for cc.handlers > 0 {
		cc.handlersDone.Wait()
	}
	cc.mu.Unlock()
}

// countFrameError counts an error the Framer returned, under net/http's
// name for it where it has one (the frame parsers' names), from the header
// of the frame that caused it.
func (cc *conn) countFrameError(code http2.ErrCode) {
	if cc.opts.OnError == nil {
		return
	}
	h := cc.rd.last
	length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	typ, flags := http2.FrameType(h[3]), http2.Flags(h[4])
	stream := (uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])) & (1<<31 - 1)
	name := ""
	switch typ {
	case http2.FrameData:
		name = pick(stream == 0, "frame_data_stream_0", "frame_data_pad_too_big")
	case http2.FrameHeaders:
		switch {
		case stream == 0:
			name = "frame_headers_zero_stream"
		case code == http2.ErrCodeCompression:
			name = "conn_COMPRESSION_ERROR_hpack"
		case code == http2.ErrCodeProtocol && flags&http2.FlagHeadersPadded != 0:
			name = "frame_headers_pad_too_big"
		}
	case http2.FramePriority:
		name = pick(stream == 0, "frame_priority_zero_stream", "frame_priority_bad_length")
	case http2.FrameRSTStream:
		name = pick(length != 4, "frame_rststream_bad_len", "frame_rststream_zero_stream")
	case http2.FrameSettings:
		switch {
		case flags&http2.FlagSettingsAck != 0 && length > 0:
			name = "frame_settings_ack_with_length"
		case stream != 0:
			name = "frame_settings_has_stream"
		case length%6 != 0:
			name = "frame_settings_mod_6"
		default:
			name = "frame_settings_window_size_too_big"
		}
	case http2.FramePushPromise:
		name = "frame_pushpromise_zero_stream"
	case http2.FramePing:
		name = pick(length != 8, "frame_ping_length", "frame_ping_has_stream")
	case http2.FrameGoAway:
		name = pick(stream != 0, "frame_goaway_has_stream", "frame_goaway_short")
	case http2.FrameWindowUpdate:
		switch {
		case length != 4:
			name = "frame_windowupdate_bad_len"
		case stream == 0:
			name = "frame_windowupdate_zero_inc_conn"
		default:
			name = "frame_windowupdate_zero_inc_stream"
		}
	case http2.FrameContinuation:
		name = "frame_continuation_zero_stream"
	}
	if name == "" {
		name = "frame_" + code.String()
	}
	cc.opts.OnError(name)
}

func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// abandoned reports whether st was answered and its handler returned
// while the client had not ended its body.
func (st *stream) abandoned() bool {
	return st.handlerDone && st.localClosed && !st.remoteClosed && (st.fast == nil || !st.fast.draining())
}

// resetAbandoned resets abandoned streams (RST_STREAM NO_ERROR), all of
// them or the first found.
func (cc *conn) resetAbandoned(all bool) bool {
	found := false
	for _, st := range cc.streams {
		if st.abandoned() {
			_ = cc.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
			cc.closeStream(st, errStreamClosed)
			found = true
			if !all {
				break
			}
		}
	}
	return found
}

// guard runs f (mu held) and turns a panic in it, a bug of this package,
// into the end of this connection rather than of the process: the
// connection's state can no longer be trusted, the others' can.
func (cc *conn) guard(what string, f func()) {
	defer func() {
		if p := recover(); p != nil {
			if cc.opts.Logger != nil {
				cc.opts.Logger.Error("h2edge: panic, connection closed", "while", what, "panic", p,
					"stack", string(debug.Stack()))
			}
			cc.count("conn_INTERNAL_ERROR_panic")
			cc.closeLocked()
		}
	}()
	f()
}
