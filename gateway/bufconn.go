package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
)

// ConnOptions shape the socket of every accepted data connection.
type ConnOptions struct {
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
}

// Listen opens a data listener as the gateway does: TCP on addr, accepted
// connections shaped by co, and, with certFile and keyFile, TLS offering h2
// and HTTP/1.1 by ALPN (the TLS records then go through co's buffers). The
// benchmark baselines use it so that they and the gateway share one socket
// setup.
func Listen(addr string, co ConnOptions, certFile, keyFile string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if co.ReadBuffer > 0 || co.CoalesceWrites {
		ln = &shapedListener{Listener: ln, opts: co}
	}
	if certFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("loading TLS key pair: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert},
		NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}), nil
}

// shapedListener wraps accepted connections as its options say.
type shapedListener struct {
	net.Listener
	opts ConnOptions
}

// Accept wraps the next connection.
func (l *shapedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &shapedConn{Conn: c}
	if l.opts.ReadBuffer > 0 {
		sc.r = bufio.NewReaderSize(c, l.opts.ReadBuffer)
	}
	if l.opts.CoalesceWrites {
		sc.w = newCoalescer(c)
	}
	return sc, nil
}

// shapedConn reads through r and writes through w where they are set, and
// straight to the connection where not.
type shapedConn struct {
	net.Conn
	r *bufio.Reader
	w *coalescer
}

// Read reads through the buffer.
func (c *shapedConn) Read(p []byte) (int, error) {
	if c.r == nil {
		return c.Conn.Read(p)
	}
	return c.r.Read(p)
}

// Write writes through the coalescer.
func (c *shapedConn) Write(p []byte) (int, error) {
	if c.w == nil {
		return c.Conn.Write(p)
	}
	return c.w.Write(p)
}

// Close closes the connection after the coalescer has sent what it holds.
func (c *shapedConn) Close() error {
	if c.w == nil {
		return c.Conn.Close()
	}
	return c.w.Close()
}

// CloseWrite sends what the coalescer holds, then half-closes the
// underlying TCP connection, as net/http expects of a connection it shuts
// down gracefully.
func (c *shapedConn) CloseWrite() error {
	if c.w != nil {
		if err := c.w.waitIdle(); err != nil {
			return err
		}
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
