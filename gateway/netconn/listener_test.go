package netconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestListenShapesConnections: Listen's options reach the accepted
// connections.
func TestListenShapesConnections(t *testing.T) {
	for _, co := range []Options{{}, {ReadBuffer: 4096}, {CoalesceWrites: true}, {ReadBuffer: 4096, CoalesceWrites: true},
		{ControlFrameLimit: 10}} {
		ln, err := Listen("127.0.0.1:0", co, "", "")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Close()
			}
		}()
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		sc, shaped := c.(*conn)
		switch {
		case co.ReadBuffer == 0 && !co.CoalesceWrites && co.ControlFrameLimit == 0:
			if shaped {
				t.Errorf("%+v: connection wrapped, want the plain TCP connection", co)
			}
		case !shaped:
			t.Errorf("%+v: connection not shaped", co)
		case (sc.r != nil) != (co.ReadBuffer > 0) || (sc.w != nil) != co.CoalesceWrites ||
			(sc.watch != nil) != (co.ControlFrameLimit > 0):
			t.Errorf("%+v: reader %v, coalescer %v, frame watch %v", co, sc.r != nil, sc.w != nil, sc.watch != nil)
		}
		c.Close()
	}
}

// TestDrainWaitsForStuckFlusher: Drain does not return while a closed
// connection's flusher still holds bytes its peer has not read, and does
// once the close timeout has closed the socket under it.
func TestDrainWaitsForStuckFlusher(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", Options{CoalesceWrites: true}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String()) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// Small socket buffers, so that the kernel's autotuning does not take
	// megabytes off the coalescer; then fill both until Write waits.
	if err := peer.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	if err := c.(*conn).Conn.(*net.TCPConn).SetWriteBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		chunk := make([]byte, 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	sc := c.(*conn)
	checkFor(t, func() error {
		sc.w.mu.Lock()
		defer sc.w.mu.Unlock()
		if sc.w.pending == nil || len(*sc.w.pending) < coalesceMaxPending {
			return errors.New("the coalescer is not full yet")
		}
		return nil
	})
	closed := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-wrote
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ln.Drain(short); err == nil {
		t.Fatal("Drain returned while a flusher still held unread bytes")
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := ln.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(closed); d < coalesceCloseTimeout/2 {
		t.Errorf("drained %v after Close, before the close timeout", d)
	}
}

// TestCoalescedTLSResponsesBeforeClose: over TLS, answers that the server
// writes just before closing the connection arrive (HTTP/1.1 with
// Connection: close, and the 431 for a header block too large). TLS sets
// a write deadline in the past after queueing its close_notify; when that
// deadline reached the socket under the flusher, these answers were lost.
func TestCoalescedTLSResponsesBeforeClose(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t)
	ln, err := Listen("127.0.0.1:0", Options{ReadBuffer: DefaultReadBuffer, CoalesceWrites: true}, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{MaxHeaderBytes: 1 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "answer")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := ln.Drain(ctx); err != nil {
			t.Error(err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: newClientTLS(roots), DisableKeepAlives: true}}
	for i := range 100 {
		resp, err := client.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "answer" {
			t.Fatalf("request %d: body %q, %v", i, body, err)
		}
	}
	for i := range 20 {
		c, err := tls.Dial("tcp", ln.Addr().String(), newClientTLS(roots))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("y", 8<<10))
		b, _ := io.ReadAll(c)
		c.Close()
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 431")) {
			t.Fatalf("connection %d: got %.40q, want a 431 answer", i, b)
		}
	}
}
