package netconn

import (
	"crypto/tls"
	"net"
	"syscall"
	"testing"
)

// notSentLowat reads TCP_NOTSENT_LOWAT off c's socket.
func notSentLowat(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if cerr := rc.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat) }); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSetNotSentLowat: the bound reaches the socket under a shaped
// connection, plain or under TLS, and its coalescer; the bound it returns
// gives both their defaults back.
func TestSetNotSentLowat(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t)
	for _, tc := range []struct {
		name      string
		cert, key string
	}{{"plain", "", ""}, {"tls", certFile, keyFile}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen("127.0.0.1:0", Options{CoalesceWrites: true, ReadBuffer: 4096}, tc.cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if tc.cert == "" {
					if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
						defer c.Close()
						_, _ = c.Read(make([]byte, 1))
					}
					return
				}
				if c, err := tls.Dial("tcp", ln.Addr().String(), newClientTLS(roots)); err == nil {
					defer c.Close()
					_, _ = c.Read(make([]byte, 1))
				}
			}()
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc, ok := c.(*conn)
			if tc.cert != "" {
				sc, ok = c.(*tls.Conn).NetConn().(*conn)
			}
			if !ok || sc.w == nil {
				t.Fatalf("%T: not a shaped connection with a coalescer", c)
			}
			def := notSentLowat(t, sc.Conn)
			prev, err := SetNotSentLowat(c, 64<<10)
			if err != nil || prev != def {
				t.Fatalf("SetNotSentLowat: %d, %v; want the default %d", prev, err, def)
			}
			if got := notSentLowat(t, sc.Conn); got != 64<<10 {
				t.Errorf("TCP_NOTSENT_LOWAT %d, want %d", got, 64<<10)
			}
			sc.w.mu.Lock()
			if got := sc.w.maxPending(); got != 64<<10 {
				t.Errorf("coalescer bound %d, want %d", got, 64<<10)
			}
			sc.w.mu.Unlock()
			if _, err := SetNotSentLowat(c, prev); err != nil {
				t.Fatal(err)
			}
			if got := notSentLowat(t, sc.Conn); got != def {
				t.Errorf("TCP_NOTSENT_LOWAT %d set back, want the default %d", got, def)
			}
			sc.w.mu.Lock()
			if got := sc.w.maxPending(); got != coalesceMaxPending {
				t.Errorf("coalescer bound %d set back, want %d", got, coalesceMaxPending)
			}
			sc.w.mu.Unlock()
		})
	}
}
