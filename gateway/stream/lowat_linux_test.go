package stream_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/gateway/stream"
)

// siocoutq is SIOCOUTQ (TIOCOUTQ): the bytes of a TCP socket's send queue,
// sent and unacknowledged or not sent yet.
const siocoutq = 0x5411

// outq returns the bytes c's socket holds in its send queue.
func outq(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, siocoutq, uintptr(unsafe.Pointer(&n)))
	}); err != nil {
		t.Fatal(err)
	}
	if errno != 0 {
		t.Fatalf("ioctl SIOCOUTQ: %v", errno)
	}
	return int(n)
}

// stalled opens an HTTP/1.1 stream of a client with a 4 KiB receive buffer
// (set before connecting), on a hub whose connections keep the system's
// send buffer (auto-tuned up to net.ipv4.tcp_wmem's max, 4 MiB by
// default). The client reads the events publish(1) to publish(warmEvents)
// make, as a subscriber does before it stalls: the gateway's writes then
// wait for room and the acknowledgements grow its send buffer, as they do
// on a live stream. It returns the stream, which the caller then stops
// reading, the gateway's side of its connection and the hub's metrics.
func stalled(t *testing.T, o stream.Options, url string, publish func(e *env, i int)) *stall {
	t.Helper()
	ms := metrics.NewSet()
	o.Metrics, o.WriteTimeout = ms, time.Hour
	e := newEnv(t, o)
	s := openSSE(t, client(proto{"h1", true}, 4<<10), e.base+url)
	cr := &countingReader{r: s.resp.Body}
	s.r = bufio.NewReader(cr)
	var sc net.Conn
	select {
	case sc = <-e.conns:
	default:
		t.Fatal("the server saw no connection")
	}
	e.settle()
	for i := 1; i <= warmEvents; {
		for end := i + 100; i < end; i++ {
			publish(e, i)
		}
		e.flushPub()
		for int(s.mustNext(t).num("sluiceseq")) < i-1 {
		}
	}
	waitReceived(t, ms, warmEvents)
	t.Logf("after %d events read, the gateway's socket: %s", warmEvents, sndbuf(t, sc))
	cr.n.Store(0)
	return &stall{e: e, s: s, sc: sc, ms: ms, read: &cr.n}
}

// stall is a stream whose client stopped reading.
type stall struct {
	e    *env
	s    *sse
	sc   net.Conn // the gateway's side
	ms   *metrics.Set
	read *atomic.Int64 // bytes of the body read since the client stopped
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// publish publishes events warmEvents+1 to publishEvents while the client
// reads nothing, each once the hub may have written the one before
// (a NATS round trip between them), and returns what the gateway's socket
// holds once the hub has received the last.
func (st *stall) publish(t *testing.T, publish func(e *env, i int)) int {
	t.Helper()
	for i := warmEvents + 1; i <= publishEvents; i++ {
		publish(st.e, i)
		st.e.flushPub()
	}
	waitReceived(t, st.ms, publishEvents)
	t.Logf("%d events later: %s", publishEvents-warmEvents, sndbuf(t, st.sc))
	queued := outq(t, st.sc)
	if queued > unsentBound {
		t.Errorf("the gateway's socket holds %d bytes for a subscriber that reads nothing, want at most %d", queued, unsentBound)
	}
	return queued
}

// warmEvents is what a subscriber reads before it stalls.
const warmEvents = 2000

// sndbuf returns the send buffer size of c's socket.
func sndbuf(t *testing.T, c net.Conn) string {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	_ = rc.Control(func(fd uintptr) { n, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) })
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("SO_SNDBUF %d, %d bytes queued", n, outq(t, c))
}

// waitReceived waits until the hub has received n events, or has cut a
// subscriber (which then no longer holds the events it receives).
func waitReceived(t *testing.T, ms *metrics.Set, n int) {
	t.Helper()
	c := ms.GetOrCreateCounter(`sluice_stream_events_received_total`)
	cut := ms.GetOrCreateCounter(`sluice_stream_slow_consumers_cut_total`)
	for deadline := time.Now().Add(20 * time.Second); c.Get() < uint64(n) && cut.Get() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the hub received %d events of %d (dropped %d, bad %d)", c.Get(), n, ms.GetOrCreateCounter(`sluice_stream_nats_dropped_total`).Get(), ms.GetOrCreateCounter(`sluice_stream_undecodable_events_total`).Get())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// unsentBound is what a stalled subscriber's socket may hold with the
// default low-water mark: the mark, one write past it (the kernel checks
// the mark before it copies a write, not within), and the few KiB the
// client's window takes in flight.
const unsentBound = 2*stream.DefaultNotSentLowat + 16<<10

// publishEvents is the last event the tests publish: the 4,000 after the
// warm-up are 1.5 MB of SSE or more, which the kernel alone takes (the
// send buffer has grown to 4 MiB) and the low-water mark does not.
const publishEvents = 6000

// TestStalledQuoteSubscriberConflatedPromptly (issue #13): an HTTP/1.1
// subscriber that stops reading while one symbol is updated makes the
// gateway's writes wait once about --stream-notsent-lowat bytes are unsent
// in its socket, not once the kernel's send buffer (grown to megabytes) is
// full: its queue conflates from then on, so when it reads again it gets
// the latest quote after at most that much, with what was replaced
// counted.
func TestStalledQuoteSubscriberConflatedPromptly(t *testing.T) {
	quote := func(e *env, i int) { e.publishQuote("FAST", float64(i)) }
	st := stalled(t, stream.Options{}, "/v1/streams/quote?symbols=FAST&snapshot=false", quote)
	queued := st.publish(t, quote)
	events, replaced := 0, 0
	for {
		ev := st.s.mustNext(t)
		events++
		replaced += int(ev.num("sluicereplaced"))
		if ev.bid() == publishEvents {
			break
		}
	}
	read := st.read.Load()
	if replaced == 0 || events+replaced != publishEvents-warmEvents {
		t.Errorf("%d events read + %d replaced, want %d with some conflated", events, replaced, publishEvents-warmEvents)
	}
	// The latest quote comes after what the socket held and one event.
	if read > unsentBound+4<<10 {
		t.Errorf("the latest quote came after %d bytes, want at most %d", read, unsentBound+4<<10)
	}
	t.Logf("socket held %d bytes unsent or in flight; %d quotes read as %d events (%d replaced), %d bytes", queued, publishEvents-warmEvents, events, replaced, read)
}

// TestStalledTradeSubscriberCutPromptly (issue #13): an HTTP/1.1 trade
// subscriber that stops reading is cut, with its resume token, once it is
// its buffer behind beyond about --stream-notsent-lowat bytes, not once the
// kernel's send buffer (grown to megabytes) is full as well.
func TestStalledTradeSubscriberCutPromptly(t *testing.T) {
	trade := func(e *env, i int) { e.publishTrade("X", int64(i)) }
	st := stalled(t, stream.Options{Buffer: 1024}, "/v1/streams/trade?symbols=*&snapshot=false", trade)
	queued := st.publish(t, trade)
	// Without the bound every trade is in the kernel, none is cut, and
	// the reader would wait for more: stop it.
	timer := time.AfterFunc(10*time.Second, func() { _ = st.s.resp.Body.Close() })
	defer timer.Stop()
	var lastID string
	got := 0
	for {
		ev := st.s.mustNext(t)
		if ev.event == stream.TypeStreamEnd {
			if ev.data["reason"] != stream.EndSlowConsumer || ev.data["token"] != lastID {
				t.Fatalf("final event %+v, want slow_consumer naming %q", ev, lastID)
			}
			break
		}
		got++
		if int(ev.num("sluiceseq")) != warmEvents+got {
			t.Fatalf("trade %d is %+v", got, ev)
		}
		lastID = ev.id
	}
	read := st.read.Load()
	// The cut comes after what the socket held: the buffer was full then.
	if read > unsentBound+4<<10 {
		t.Errorf("the cut came after %d bytes, want at most %d", read, unsentBound+4<<10)
	}
	t.Logf("socket held %d bytes unsent or in flight; cut after %d trades of %d (%d bytes)", queued, got, publishEvents-warmEvents, read)
}
