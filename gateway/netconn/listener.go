package netconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// Defaults the gateway uses unless told otherwise.
const (
	// DefaultReadBuffer is the read buffer put around each connection.
	DefaultReadBuffer = 16 << 10
	// DefaultControlFrameLimit is the HTTP/2 PING and SETTINGS frames an
	// h2c connection may send in one second. Clients send a few a minute
	// (keep-alive pings, the odd settings change); a flood sends
	// thousands.
	DefaultControlFrameLimit = 100
)

// Options shape the socket of every accepted data connection.
type Options struct {
	// ReadBuffer is the buffered reader put around each connection, in
	// bytes (0 or less: none). Go's HTTP/2 server reads each frame header
	// and payload with its own read; on a busy h2c connection a 16 KiB
	// buffer turns several syscalls per request into one.
	ReadBuffer int
	// CoalesceWrites sends what the HTTP server writes through a
	// coalescer: writes that arrive while one is on its way go out
	// together in the next syscall (see benchmarks/README.md, "Write
	// coalescing").
	CoalesceWrites bool
	// ControlFrameLimit bounds the HTTP/2 PING and SETTINGS frames (ACKs
	// aside) that an h2c connection may send in one second; the connection
	// that sends more is closed, without a GOAWAY (the server's writes may
	// stop mid-frame, so nothing can be slipped between them). Go's HTTP/2
	// server answers each such frame and has no bound of its own for a
	// client that reads the answers. 0 or less: no bound. Over TLS the
	// frames are not seen: net/http serves h2 only on a *tls.Conn, so
	// nothing can read the plaintext between TLS and the HTTP/2 server.
	ControlFrameLimit int
	// OnControlFlood, if set, is called once for each connection closed
	// for ControlFrameLimit, from the goroutine reading it.
	OnControlFlood func()
	// ProblemErrors writes the answers that net/http writes itself, as
	// text/plain, to an HTTP/1.1 request it cannot parse (431 for a header
	// block past http.Server.MaxHeaderBytes, 400, 501, 505) as
	// application/problem+json (RFC 9457), like the handlers' errors. No
	// handler sees those requests. Over TLS the answers are encrypted
	// before they reach the shaped connection and stay text/plain.
	ProblemErrors bool
	// MaxHeaderBytes is the server's http.Server.MaxHeaderBytes, named in
	// the detail of a 431 (0: not named).
	MaxHeaderBytes int
	// OnHTTPError, if set, is called with the status of each answer that
	// ProblemErrors rewrote, so that the requests no handler saw are
	// counted.
	OnHTTPError func(status int)
}

// Listener is a data listener: TCP, connections shaped by [Options],
// TLS on top when configured.
type Listener struct {
	net.Listener
	flushing atomic.Int64 // coalescer flushers running
}

// Listen opens a data listener as the gateway does: TCP on addr, accepted
// connections shaped by opts, and, with certFile and keyFile, TLS offering h2
// and HTTP/1.1 by ALPN (the TLS records then go through opts' buffers). The
// benchmark baselines use it so that they and the gateway share one socket
// setup.
func Listen(addr string, opts Options, certFile, keyFile string) (*Listener, error) {
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	l := &Listener{Listener: tcp}
	if certFile != "" {
		opts.ControlFrameLimit = 0 // the shaped connection carries TLS records
	}
	if certFile != "" {
		opts.ProblemErrors = false
	}
	if opts.ReadBuffer > 0 || opts.CoalesceWrites || opts.ControlFrameLimit > 0 || opts.ProblemErrors {
		l.Listener = &listener{Listener: tcp, opts: opts, flushing: &l.flushing}
	}
	if certFile == "" {
		return l, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		_ = tcp.Close()
		return nil, fmt.Errorf("loading TLS key pair: %w", err)
	}
	l.Listener = tls.NewListener(l.Listener, &tls.Config{Certificates: []tls.Certificate{cert},
		NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
	return l, nil
}

// Drain waits until the coalescers of closed connections have sent what
// they hold (each as long as its peer keeps reading, at most a second
// without progress), or ctx ends. Call it after
// http.Server.Shutdown: the server counts a connection done once its last
// bytes are in the coalescer, and a process that exits then would lose
// them, where bytes in the kernel's socket buffer would still go out.
func (l *Listener) Drain(ctx context.Context) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for l.flushing.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sending what closed connections still hold: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// listener wraps accepted connections as its options say.
type listener struct {
	net.Listener
	opts     Options
	flushing *atomic.Int64
}

// Accept wraps the next connection.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &conn{Conn: c}
	if l.opts.ReadBuffer > 0 {
		sc.r = bufio.NewReaderSize(c, l.opts.ReadBuffer)
	}
	if l.opts.CoalesceWrites {
		sc.w = newCoalescer(c, l.flushing)
	}
	if l.opts.ProblemErrors {
		sc.errs = &l.opts
	}
	if l.opts.ControlFrameLimit > 0 {
		sc.watch = &frameWatch{limit: l.opts.ControlFrameLimit}
		sc.onFlood = l.opts.OnControlFlood
	}
	return sc, nil
}
