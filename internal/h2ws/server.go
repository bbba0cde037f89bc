package h2ws

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	_ "github.com/sluice-dev/sluice/internal/xconnect" // net/http's server advertises RFC 8441
)

// Protocol is the :protocol of a WebSocket over HTTP/2.
const Protocol = "websocket"

// IsRequest reports whether r opens a WebSocket over HTTP/2: an extended
// CONNECT whose :protocol is websocket.
func IsRequest(r *http.Request) bool {
	if r.Method != http.MethodConnect {
		return false
	}
	p := r.Header[":protocol"]
	return len(p) == 1 && p[0] == Protocol
}

// handshakeKey stands in for the Sec-WebSocket-Key an HTTP/2 client does
// not send (RFC 8441, 5): the library checks that one is there; the
// Sec-WebSocket-Accept it derives from it is not sent.
const handshakeKey = "c2x1aWNlLXJmYzg0NDEtaw=="

// Accept accepts a WebSocket as websocket.Accept does, over HTTP/2 too: an
// extended CONNECT ([IsRequest]) is answered 200 and the WebSocket runs on
// its stream; anything else goes to websocket.Accept as it is. On error the
// request has been answered (4xx).
//
// Over HTTP/2 the stream has no server read or write deadline once
// accepted (the library bounds each Read and Write by its context, and
// closing the Conn fails a write still waiting for the peer's window).
func Accept(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*websocket.Conn, error) {
	if !IsRequest(r) {
		return websocket.Accept(w, r, opts)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	up := r.Clone(r.Context())
	up.Method = http.MethodGet
	delete(up.Header, ":protocol")
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", Protocol)
	up.Header.Set("Sec-WebSocket-Key", handshakeKey)
	sc := &streamConn{w: w, rc: rc, body: r.Body, remote: addr(r.RemoteAddr)}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		sc.local = a
	}
	return websocket.Accept(&upgrader{ResponseWriter: w, c: sc}, up, opts)
}

// upgrader is the ResponseWriter websocket.Accept writes its answer to:
// its 101 becomes RFC 8441's 200, and Hijack gives the stream.
type upgrader struct {
	http.ResponseWriter
	c        *streamConn
	flushErr error
}

func (u *upgrader) WriteHeader(code int) {
	if code != http.StatusSwitchingProtocols {
		u.ResponseWriter.WriteHeader(code)
		return
	}
	h := u.Header()
	h.Del("Upgrade")
	h.Del("Connection")
	h.Del("Sec-WebSocket-Accept")
	u.ResponseWriter.WriteHeader(http.StatusOK)
	u.flushErr = u.c.rc.Flush()
}

func (u *upgrader) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if u.flushErr != nil {
		return nil, nil, u.flushErr
	}
	return u.c, bufio.NewReadWriter(bufio.NewReader(u.c), bufio.NewWriter(u.c)), nil
}

// closeGrace is how long Close lets a write in flight finish before it
// fails it (the write waits for the peer's flow-control window).
const closeGrace = 100 * time.Millisecond

// streamConn is an HTTP/2 stream as the net.Conn the library runs on:
// reads from the request body, writes to the answer, each flushed as it
// comes (the library writes a frame at a time). Close makes later reads and
// writes fail; it must come before the handler returns (the library's Conn
// closes it: CloseNow, Close, or a timeout), as the ResponseWriter may not
// be used after.
type streamConn struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	body   io.ReadCloser
	local  net.Addr
	remote net.Addr

	mu     sync.Mutex // held by a write
	closed atomic.Bool
	once   sync.Once
}

var _ net.Conn = (*streamConn)(nil)

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	if err != nil && n == 0 && !errors.Is(err, io.EOF) && c.closed.Load() {
		err = net.ErrClosed
	}
	return n, err
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.w.Write(p)
	if err == nil {
		err = c.rc.Flush()
	}
	return n, err
}

// Close ends reads at once and writes once the one in flight, if any, is
// done (failing it past closeGrace); the stream itself ends when the
// handler returns.
func (c *streamConn) Close() error {
	c.once.Do(func() {
		_ = c.body.Close()
		if !c.mu.TryLock() {
			_ = c.rc.SetWriteDeadline(time.Now().Add(closeGrace))
			c.mu.Lock()
			_ = c.rc.SetWriteDeadline(time.Time{})
		}
		c.closed.Store(true)
		c.mu.Unlock()
	})
	return nil
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

func (c *streamConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *streamConn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return c.rc.SetReadDeadline(t)
}

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return c.rc.SetWriteDeadline(t)
}

// addr is a remote address as the request gives it.
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }
