package netconn

import (
	"bufio"
	"net"
	"time"
)

// conn reads through r and writes through w where they are set, and
// straight to the connection where not. With w, write deadlines are w's:
// they bound the Writes, not the bytes already accepted.
type conn struct {
	net.Conn
	r *bufio.Reader
	w *coalescer
}

// Read reads through the buffer.
func (c *conn) Read(p []byte) (int, error) {
	if c.r == nil {
		return c.Conn.Read(p)
	}
	return c.r.Read(p)
}

// Write writes through the coalescer.
func (c *conn) Write(p []byte) (int, error) {
	if c.w == nil {
		return c.Conn.Write(p)
	}
	return c.w.Write(p)
}

// SetWriteDeadline bounds later Writes.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.w == nil {
		return c.Conn.SetWriteDeadline(t)
	}
	c.w.SetWriteDeadline(t)
	return nil
}

// SetDeadline sets the read deadline of the connection and the write
// deadline of later Writes.
func (c *conn) SetDeadline(t time.Time) error {
	if c.w == nil {
		return c.Conn.SetDeadline(t)
	}
	c.w.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// Close closes the connection once the coalescer has sent what it holds.
func (c *conn) Close() error {
	if c.w == nil {
		return c.Conn.Close()
	}
	return c.w.Close()
}

// CloseWrite half-closes the TCP connection, after the coalescer has sent
// what it holds, as net/http does to a connection it shuts down
// gracefully.
func (c *conn) CloseWrite() error {
	if c.w != nil {
		return c.w.CloseWrite()
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
