package netconn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
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

// cycle serves head once, then body over and over.
type cycle struct {
	head, body []byte
	off        int
}

func (c *cycle) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.body[c.off:])
		n += k
		c.off = (c.off + k) % len(c.body)
	}
	return n, nil
}

// BenchmarkConnRead reads an h2c client's frames (a HEADERS and a
// 300-byte DATA frame per op, the shape of a small request) through a
// shaped connection's 16 KiB buffer with http2's Framer, as Go's HTTP/2
// server reads them: without and with the control frame watch.
func BenchmarkConnRead(b *testing.B) {
	var frames bytes.Buffer
	fr := http2.NewFramer(&frames, nil)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: make([]byte, 40), EndHeaders: true})
	_ = fr.WriteData(1, true, make([]byte, 300))
	for _, watch := range []bool{false, true} {
		b.Run(fmt.Sprintf("watch=%v", watch), func(b *testing.B) {
			src := &cycle{head: []byte(http2.ClientPreface), body: frames.Bytes()}
			c := &conn{r: bufio.NewReaderSize(src, DefaultReadBuffer)}
			if watch {
				c.watch = &frameWatch{limit: DefaultControlFrameLimit}
			}
			if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
				b.Fatal(err)
			}
			rf := http2.NewFramer(nil, c)
			b.ReportAllocs()
			b.SetBytes(int64(frames.Len()))
			for b.Loop() {
				for range 2 {
					if _, err := rf.ReadFrame(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if watch && c.watch == nil {
				b.Fatal("the watch switched itself off")
			}
		})
	}
}
