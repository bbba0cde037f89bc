package netconn

import (
	"bufio"
	"net"
	"time"
)

// conn reads through r and writes through w where they are set, and
// straight to the connection where not. With w, write deadlines are w's:
// they bound the Writes, not the bytes already accepted. With watch, what
// is read is followed as HTTP/2 frames until it turns out not to be h2c.
type conn struct {
	net.Conn
	r       *bufio.Reader
	w       *coalescer
	watch   *frameWatch
	onFlood func()
	errs    *Options // with ProblemErrors: net/http's own error answers as problems
}

// Read reads through the buffer, and has the frame watch look at what it
// read. A connection the watch finds flooding is closed at once and its
// Read fails with [ErrControlFlood].
func (c *conn) Read(p []byte) (int, error) {
	var n int
	var err error
	if c.r == nil {
		n, err = c.Conn.Read(p)
	} else {
		n, err = c.r.Read(p)
	}
	if c.watch == nil || n == 0 {
		return n, err
	}
	if werr := c.watch.scan(p[:n]); werr != nil {
		// Counted before the close, so that whoever sees the connection
		// end sees it counted. The socket itself, not through the
		// coalescer: nothing more is owed to this client.
		if c.onFlood != nil {
			c.onFlood()
		}
		_ = c.Conn.Close()
		return 0, werr
	}
	if c.watch.state == watchOff {
		c.watch = nil // HTTP/1.1: nothing to follow
	}
	return n, err
}

// Write writes through the coalescer. With Options.ProblemErrors, one of
// net/http's own plain-text error answers is written as
// application/problem+json instead (see problemAnswer).
func (c *conn) Write(p []byte) (int, error) {
	if c.errs != nil && len(p) > 0 && p[0] == 'H' {
		if b, code := problemAnswer(p, c.errs.MaxHeaderBytes); b != nil {
			if c.errs.OnHTTPError != nil {
				c.errs.OnHTTPError(code)
			}
			if _, err := c.write(b); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.write(p)
}

func (c *conn) write(p []byte) (int, error) {
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
