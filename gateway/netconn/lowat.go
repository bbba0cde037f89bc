package netconn

import (
	"crypto/tls"
	"fmt"
	"net"
	"syscall"
)

// SetNotSentLowat bounds the bytes written to c and not yet sent to n, so
// that a Write to a peer that stopped
// reading waits once about n bytes are queued, where the kernel would
// otherwise accept as many as the send buffer it grows for the connection
// holds (net.ipv4.tcp_wmem's max, 4 MiB by default). It is TCP_NOTSENT_LOWAT
// on Linux and does nothing elsewhere. c may be a [Listener]'s connection
// (its write coalescer is then bounded to n as well), a *tls.Conn over one,
// or a TCP connection. It returns the socket's bound before, which a call
// with it sets back (a bound of 0 or less, or past 128 KiB, leaves the
// coalescer its own).
func SetNotSentLowat(c net.Conn, n int) (prev int, err error) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if sc, ok := c.(*conn); ok {
		if sc.w != nil {
			sc.w.setLimit(n)
		}
		c = sc.Conn
	}
	raw, ok := c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("setting TCP_NOTSENT_LOWAT: %T is not a socket", c)
	}
	rc, err := raw.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("setting TCP_NOTSENT_LOWAT: %w", err)
	}
	if prev, err = setNotSentLowat(rc, n); err != nil {
		return 0, fmt.Errorf("setting TCP_NOTSENT_LOWAT: %w", err)
	}
	return prev, nil
}
