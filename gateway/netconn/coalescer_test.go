package netconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedConn is a net.Conn whose Writes wait for the test to open its gate;
// it records what each Write carried and how often it was closed.
type gatedConn struct {
	net.Conn // nil: only the methods below are called

	gate     chan struct{} // one send lets one Write through
	entered  chan struct{} // one receive per Write that reached the gate
	expired  chan struct{} // closed when the first write deadline passes
	deadline sync.Once
	shut     chan struct{} // closed by the first Close
	shutOnce sync.Once
	mu       sync.Mutex
	writes   [][]byte
	closes   int
	halfs    int   // CloseWrite calls
	err      error // returned by every Write once set
}

func newGatedConn() *gatedConn {
	return &gatedConn{gate: make(chan struct{}), entered: make(chan struct{}, 1024), expired: make(chan struct{}), shut: make(chan struct{})}
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	c.entered <- struct{}{}
	select {
	case <-c.gate:
	case <-c.expired:
		return 0, os.ErrDeadlineExceeded
	case <-c.shut:
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closes > 0 {
		return 0, net.ErrClosed
	}
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *gatedConn) SetWriteDeadline(t time.Time) error {
	c.deadline.Do(func() { time.AfterFunc(time.Until(t), func() { close(c.expired) }) })
	return nil
}

func (c *gatedConn) Close() error {
	c.shutOnce.Do(func() { close(c.shut) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	return nil
}

func (c *gatedConn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.halfs++
	return nil
}

// open lets one Write through, failing the test if none comes.
func (c *gatedConn) open(t *testing.T) {
	t.Helper()
	select {
	case c.gate <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("no write reached the connection")
	}
}

// waitEntered waits until a Write has reached the gate.
func (c *gatedConn) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-c.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no write reached the connection")
	}
}

func (c *gatedConn) state() (writes int, all []byte, closes, halfs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.writes {
		all = append(all, w...)
	}
	return len(c.writes), all, c.closes, c.halfs
}

func mustWrite(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%.20q) = %d, %v", s, n, err)
	}
}

// TestCoalescerJoinsWritesDuringASyscall: while one write is on its way,
// what the server writes waits and goes out in a single next write, in
// order; then the idle connection gives its buffers back.
func TestCoalescerJoinsWritesDuringASyscall(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc, nil)
	var want bytes.Buffer
	mustWrite(t, w, "first;")
	want.WriteString("first;")
	gc.waitEntered(t) // the flusher holds "first;" at the gate
	for i := range 100 {
		s := "frame" + strconv.Itoa(i) + ";"
		mustWrite(t, w, s)
		want.WriteString(s)
	}
	gc.open(t)
	gc.open(t)
	if err := w.waitIdle(); err != nil {
		t.Fatal(err)
	}
	n, got, _, _ := gc.state()
	if n != 2 {
		t.Errorf("%d writes reached the connection, want 2 (the first, then the 100 that arrived during it)", n)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the connection got %q, want %q", got, want.Bytes())
	}
	w.mu.Lock()
	kept := w.pending != nil || w.spare != nil
	w.mu.Unlock()
	if kept {
		t.Error("an idle connection kept its buffers")
	}
}

// fillToBound queues enough that the next Write must wait for room, with
// the flusher held at the gate. It fills in two Writes, so that the buffer
// grows past its first size (append's own doubling would overshoot the
// bound).
func fillToBound(t *testing.T, gc *gatedConn, w *coalescer) {
	t.Helper()
	mustWrite(t, w, "x")
	gc.waitEntered(t)
	for _, n := range []int{100 << 10, coalesceMaxPending - 100<<10} {
		if _, err := w.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
}

// waitBlocked waits until a Write holds w's write lock: it waits for room.
func waitBlocked(t *testing.T, w *coalescer) {
	t.Helper()
	checkFor(t, func() error {
		if w.wmu.TryLock() {
			w.wmu.Unlock()
			return errors.New("no Write waits for room")
		}
		return nil
	})
}

// TestCoalescerBlocksPastMaxPending: a connection whose peer does not read
// holds a bounded number of bytes; the next Write waits for room.
func TestCoalescerBlocksPastMaxPending(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc, nil)
	fillToBound(t, gc, w)
	w.mu.Lock()
	if c := cap(*w.pending); c > coalesceMaxPending {
		t.Errorf("pending buffer grew to %d bytes, past the %d bound", c, coalesceMaxPending)
	}
	w.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("past the bound"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a Write past the bound returned (%v) before the connection took anything", err)
	case <-time.After(50 * time.Millisecond):
	}
	for range 3 {
		gc.open(t)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.waitIdle(); err != nil {
		t.Fatal(err)
	}
	if _, got, _, _ := gc.state(); len(got) != 1+coalesceMaxPending+len("past the bound") {
		t.Errorf("the connection got %d bytes, want %d", len(got), 1+coalesceMaxPending+len("past the bound"))
	}
}

// TestCoalescerDeadlineKeepsAcceptedBytes: a write deadline set after a
// Write (as crypto/tls does right after queueing its close_notify) fails
// later Writes, never the bytes already accepted. Passing the deadline to
// the socket under the flusher lost TLS responses sent before a close.
func TestCoalescerDeadlineKeepsAcceptedBytes(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc, nil)
	mustWrite(t, w, "accepted")
	w.SetWriteDeadline(time.Now())
	if _, err := w.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past the deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	gc.open(t)
	if err := w.waitIdle(); err != nil {
		t.Fatal(err)
	}
	if _, got, _, _ := gc.state(); string(got) != "accepted" {
		t.Fatalf("the connection got %q, want %q", got, "accepted")
	}
	w.SetWriteDeadline(time.Time{})
	mustWrite(t, w, "again")
	gc.open(t)
	if err := w.waitIdle(); err != nil {
		t.Fatal(err)
	}
}

// TestCoalescerWaitForRoomHonoursDeadline: a Write waiting for room fails
// at its deadline, also one set while it waits.
func TestCoalescerWaitForRoomHonoursDeadline(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc, nil)
	fillToBound(t, gc, w)
	done := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("waits"))
		done <- err
	}()
	waitBlocked(t, w) // the deadline is set while the Write waits
	w.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write = %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Write waiting for room outlived its deadline")
	}
	gc.open(t)
	gc.open(t)
}

// TestCoalescerWriteErrorSticks: once a write to the connection fails,
// every later Write fails with that error.
func TestCoalescerWriteErrorSticks(t *testing.T) {
	gc := newGatedConn()
	boom := errors.New("connection reset")
	gc.err = boom
	w := newCoalescer(gc, nil)
	if _, err := w.Write([]byte("lost")); err != nil {
		t.Fatalf("the first Write failed at once (%v): it only queues", err)
	}
	if err := w.waitIdle(); !errors.Is(err, boom) {
		t.Fatalf("waitIdle = %v, want %v", err, boom)
	}
	if _, err := w.Write([]byte("after")); !errors.Is(err, boom) {
		t.Fatalf("Write after a failed write = %v, want %v", err, boom)
	}
}

// TestCoalescerCloseWriteAfterPending: CloseWrite returns at once and
// half-closes the connection only after what was pending went out.
func TestCoalescerCloseWriteAfterPending(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc, nil)
	mustWrite(t, w, "last response")
	gc.waitEntered(t)
	if err := w.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, halfs := gc.state(); halfs != 0 {
		t.Fatal("half-closed before the pending bytes went out")
	}
	if _, err := w.Write([]byte("after")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after CloseWrite = %v, want net.ErrClosed", err)
	}
	gc.open(t)
	checkFor(t, func() error {
		if _, got, _, halfs := gc.state(); halfs != 1 || string(got) != "last response" {
			return fmt.Errorf("%d half-closes, got %q", halfs, got)
		}
		return nil
	})
}

// TestCoalescerCloseWithStuckPeer: Close returns at once when the peer does
// not read, wakes a Write waiting for room, and the connection is closed
// once, coalesceCloseTimeout after its last progress, even if the
// server clears its write deadline after Close.
func TestCoalescerCloseWithStuckPeer(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc, nil)
	fillToBound(t, gc, w)
	waiting := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("waits for room"))
		waiting <- err
	}()
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returned before the flusher gave up on the stuck peer, which
	// is what closes the connection: it did not wait for it. (A bound on
	// Close's duration would be a timing assertion under -race.)
	if _, _, closes, _ := gc.state(); closes != 0 {
		t.Error("Close returned only after the stuck flusher had closed the connection")
	}
	w.SetWriteDeadline(time.Time{})
	if err := <-waiting; !errors.Is(err, net.ErrClosed) {
		t.Errorf("the waiting Write returned %v after Close, want net.ErrClosed", err)
	}
	checkFor(t, func() error {
		if _, _, closes, _ := gc.state(); closes == 0 {
			return errors.New("the connection is still open")
		}
		return nil
	})
	if d := time.Since(start); d < coalesceCloseTimeout/2 {
		t.Errorf("closed %v after Close: the pending bytes got no time", d)
	}
	if err := w.waitIdle(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("waitIdle = %v, want the stuck write's os.ErrDeadlineExceeded", err)
	}
	if _, _, closes, _ := gc.state(); closes != 1 {
		t.Errorf("the connection was closed %d times, want once", closes)
	}
}

// TestCoalescerCloseSendsPendingThenCloses: over real TCP, everything
// written before Close reaches the peer, then EOF.
func TestCoalescerCloseSendsPendingThenCloses(t *testing.T) {
	server, got := tcpPair(t)
	w := newCoalescer(server, nil)
	var want bytes.Buffer
	for i := range 10_000 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		mustWrite(t, w, line)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("the peer read %d bytes, want %d", len(b), want.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the peer saw no EOF: Close did not close the connection")
	}
}

// tcpPair returns the server side of a loopback TCP connection and a
// channel that receives all the client read until EOF.
func tcpPair(t testing.TB) (net.Conn, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(bufio.NewReaderSize(c, 64<<10))
		got <- b
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, got
}

// TestCoalescerConcurrentWritesStayWhole: Writes from many goroutines each
// reach the peer whole, none interleaved, even when they wait for room.
func TestCoalescerConcurrentWritesStayWhole(t *testing.T) {
	const writers, each = 8, 100
	// Records larger than the bound's remainder make Writes wait for
	// room half-way.
	record := func(g, i int) string {
		return fmt.Sprintf("%d:%d:%s\n", g, i, strings.Repeat("x", 20_000))
	}
	server, got := tcpPair(t)
	w := newCoalescer(server, nil)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := w.Write([]byte(record(g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.waitIdle(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var all []byte
	select {
	case all = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the peer saw no EOF")
	}
	next := make([]int, writers)
	n := 0
	for l := range strings.Lines(string(all)) {
		var g, i int
		if _, err := fmt.Sscanf(l, "%d:%d:", &g, &i); err != nil || l != record(g, i) {
			t.Fatalf("line %d is not a whole record: %.60q", n, l)
		}
		if i != next[g] {
			t.Fatalf("writer %d: record %d arrived where %d was due", g, i, next[g])
		}
		next[g]++
		n++
	}
	if n != writers*each {
		t.Fatalf("%d records arrived, want %d", n, writers*each)
	}
}

// TestCoalescerCloseLetsSlowPeerFinish: a peer that reads slowly but keeps
// reading gets everything written before Close, however long that takes;
// only coalesceCloseTimeout without progress cuts it. A timer counted from
// Close truncated the last answer to such a peer.
func TestCoalescerCloseLetsSlowPeerFinish(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		buf := make([]byte, 8<<10)
		total := 0
		for {
			n, err := c.Read(buf)
			total += n
			if err != nil {
				got <- total
				return
			}
			time.Sleep(20 * time.Millisecond) // a slow reader
		}
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.(*net.TCPConn).SetWriteBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	w := newCoalescer(raw, nil)
	const size = 240 << 10 // past the kernel's buffers: most of it waits in the coalescer at Close
	for range 3 {
		if _, err := w.Write(make([]byte, size/3)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != size {
			t.Fatalf("the peer read %d of %d bytes (%v after Close)", n, size, time.Since(start))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the peer saw no EOF")
	}
}
