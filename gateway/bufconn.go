package gateway

import (
	"bufio"
	"net"
)

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
