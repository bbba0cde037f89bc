package netconn

import (
	"fmt"
	"io"
	"net"
	"testing"
)

// BenchmarkConnWrite writes 300-byte frames, the size of a small HTTP/2
// answer, to a loopback TCP connection whose peer reads everything: each
// straight to the socket, and through the coalescer.
func BenchmarkConnWrite(b *testing.B) {
	frame := make([]byte, 300)
	for _, coalesce := range []bool{false, true} {
		b.Run(fmt.Sprintf("coalesce=%v", coalesce), func(b *testing.B) {
			server := tcpDiscard(b)
			var w io.Writer = server
			var cw *coalescer
			if coalesce {
				cw = newCoalescer(server, nil)
				w = cw
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if _, err := w.Write(frame); err != nil {
					b.Fatal(err)
				}
			}
			if cw != nil {
				if err := cw.waitIdle(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// tcpDiscard returns the server side of a loopback TCP connection whose
// client reads and drops everything.
func tcpDiscard(tb testing.TB) net.Conn {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
