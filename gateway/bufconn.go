package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
)

// Listen opens a data listener as the gateway does: TCP on addr, accepted
// connections read through a buffer of readBuffer bytes (0 or less: none),
// and, with certFile and keyFile, TLS offering h2 and HTTP/1.1 by ALPN. The
// benchmark baselines use it so that they and the gateway share one socket
// setup.
func Listen(addr string, readBuffer int, certFile, keyFile string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if readBuffer > 0 {
		ln = &bufferedListener{Listener: ln, size: readBuffer}
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

// bufferedListener wraps accepted connections in a buffered reader. Go's
// HTTP/2 server reads each frame header and payload with its own read; on a
// busy h2c connection a 16 KiB buffer turns several syscalls per request into
// one (measured in benchmarks/README.md).
type bufferedListener struct {
	net.Listener
	size int
}

// Accept wraps the next connection.
func (l *bufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, l.size)}, nil
}

// bufferedConn reads through r and writes straight to the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads through the buffer.
func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the underlying TCP connection, as net/http expects
// of a connection it shuts down gracefully.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
