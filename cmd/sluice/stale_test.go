package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// blackhole is a TCP proxy to a NATS server that, once cut, drops every
// byte both ways without closing a connection: what a client sees of a
// network partition (docker network disconnect of its node).
type blackhole struct {
	ln    net.Listener
	cut   atomic.Bool // drop what is read
	stall atomic.Bool // stop reading
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go b.pipe(c, s)
			go b.pipe(s, c)
		}
	}()
	return b
}

func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		for b.stall.Load() {
			time.Sleep(10 * time.Millisecond) // read nothing: the sender's socket buffers fill
		}
		n, err := src.Read(buf)
		if n > 0 && !b.cut.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

// connectThroughBlackhole connects as the gateway and workers do, to a NATS
// server behind a blackhole proxy, and waits until the connection is up.
func connectThroughBlackhole(t *testing.T) (*blackhole, *nats.Conn) {
	t.Helper()
	srv, _ := opstest.RunNATS(t)
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	bh := newBlackhole(t, u.Host)
	nc, err := connectNATS("nats://"+bh.ln.Addr().String(), "sluice-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	opstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return errors.New("not connected yet")
		}
		return nil
	})
	return bh, nc
}

// TestConnectNATSLeavesASilentServer: the connection of a gateway or a
// worker to a NATS node cut off the network (nothing answers, nothing is
// closed) is declared stale within seconds and the client reconnects
// elsewhere. With the client's default pings (every 2 minutes, stale after
// 2 unanswered) a gateway on a partitioned node answered 503 or nothing for
// minutes in the compose stack's partition case.
func TestConnectNATSLeavesASilentServer(t *testing.T) {
	bh, nc := connectThroughBlackhole(t)
	bh.cut.Store(true)
	opstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if nc.Status() == nats.CONNECTED {
			return errors.New("still connected to a server that answers nothing")
		}
		return nil
	})
}

// TestConnectNATSLeavesAStalledServer: the same for a gateway that keeps
// publishing into the silent connection: its socket buffers fill and a
// write blocks; the write deadline must end it within seconds (the NATS
// client's default is a minute, and its pings wait behind the write).
func TestConnectNATSLeavesAStalledServer(t *testing.T) {
	bh, nc := connectThroughBlackhole(t)
	bh.stall.Store(true)
	done := make(chan struct{})
	defer close(done)
	go func() {
		body := make([]byte, 16<<10)
		for {
			select {
			case <-done:
				return
			default:
			}
			if nc.Status() != nats.CONNECTED {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			_ = nc.Publish("sluice.ingest.quote", body)
		}
	}()
	opstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if nc.Status() == nats.CONNECTED {
			return errors.New("still connected to a server that reads nothing")
		}
		return nil
	})
}
