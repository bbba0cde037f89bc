package gateway

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

// gatedConn is a net.Conn whose Writes wait for the test to open its gate
// (or for a write deadline to pass); it records what each Write carried and
// whether it was closed.
type gatedConn struct {
	net.Conn // nil: only the methods below are called

	gate     chan struct{} // one send lets one Write through
	expired  chan struct{} // closed when the first write deadline passes
	deadline sync.Once
	mu       sync.Mutex
	writes   [][]byte
	closed   bool
	err      error // returned by every Write once set
}

func newGatedConn() *gatedConn {
	return &gatedConn{gate: make(chan struct{}), expired: make(chan struct{})}
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	select {
	case <-c.gate:
	case <-c.expired:
		return 0, os.ErrDeadlineExceeded
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *gatedConn) SetWriteDeadline(t time.Time) error {
	c.deadline.Do(func() { time.AfterFunc(time.Until(t), func() { close(c.expired) }) })
	return nil
}

func (c *gatedConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *gatedConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *gatedConn) written() (n int, all []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.writes {
		all = append(all, w...)
	}
	return len(c.writes), all
}

// TestCoalescerJoinsWritesDuringASyscall: while one write is on its way,
// what the server writes waits and goes out in a single next write, in
// order.
func TestCoalescerJoinsWritesDuringASyscall(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc)
	var want bytes.Buffer
	write := func(s string) {
		t.Helper()
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
		want.WriteString(s)
	}
	write("first;")
	// The flusher now waits in gatedConn.Write with "first;".
	checkFor(t, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.pending) != 0 {
			return errors.New("the flusher has not taken the first write yet")
		}
		return nil
	})
	for i := range 100 {
		write("frame" + strconv.Itoa(i) + ";")
	}
	gc.gate <- struct{}{}
	gc.gate <- struct{}{}
	if err := w.waitIdle(); err != nil {
		t.Fatal(err)
	}
	n, got := gc.written()
	if n != 2 {
		t.Errorf("%d writes reached the connection, want 2 (the first, then the 100 that arrived during it)", n)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the connection got %q, want %q", got, want.Bytes())
	}
}

// TestCoalescerBlocksPastMaxPending: a connection whose peer does not read
// holds at most coalesceMaxPending bytes; the next Write waits for room.
func TestCoalescerBlocksPastMaxPending(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc)
	if _, err := w.Write([]byte("x")); err != nil { // taken by the flusher, held at the gate
		t.Fatal(err)
	}
	checkFor(t, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.pending) != 0 {
			return errors.New("the flusher has not taken the first write yet")
		}
		return nil
	})
	if _, err := w.Write(make([]byte, coalesceMaxPending)); err != nil {
		t.Fatal(err)
	}
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
		gc.gate <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.waitIdle(); err != nil {
		t.Fatal(err)
	}
	if _, got := gc.written(); len(got) != 1+coalesceMaxPending+len("past the bound") {
		t.Errorf("the connection got %d bytes, want %d", len(got), 1+coalesceMaxPending+len("past the bound"))
	}
}

// TestCoalescerWriteErrorSticks: once a write to the connection fails,
// every later Write fails with that error.
func TestCoalescerWriteErrorSticks(t *testing.T) {
	gc := newGatedConn()
	boom := errors.New("connection reset")
	gc.err = boom
	w := newCoalescer(gc)
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

// TestCoalescerCloseSendsPendingThenCloses: over real TCP, everything
// written before Close reaches the peer, then EOF.
func TestCoalescerCloseSendsPendingThenCloses(t *testing.T) {
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
		b, _ := io.ReadAll(c)
		got <- b
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	w := newCoalescer(raw)
	var want bytes.Buffer
	for i := range 10_000 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
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

// TestCoalescerCloseWithStuckPeer: Close returns at once when the peer does
// not read, and the connection is closed within coalesceCloseTimeout.
func TestCoalescerCloseWithStuckPeer(t *testing.T) {
	gc := newGatedConn()
	w := newCoalescer(gc)
	if _, err := w.Write([]byte("stuck")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Close took %v with a stuck peer", d)
	}
	checkFor(t, func() error {
		if !gc.isClosed() {
			return errors.New("the connection is still open")
		}
		return nil
	})
	if d := time.Since(start); d > coalesceCloseTimeout+2*time.Second {
		t.Errorf("the connection closed %v after Close, want about %v", d, coalesceCloseTimeout)
	}
}

// TestCoalescerConcurrentWritesStayWhole: Writes from many goroutines each
// reach the peer whole, none interleaved, even when they wait for room.
func TestCoalescerConcurrentWritesStayWhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const writers, each = 8, 100
	// Records larger than the bound's remainder force Writes to wait
	// for room half-way.
	record := func(g, i int) string {
		return fmt.Sprintf("%d:%d:%s\n", g, i, strings.Repeat("x", 40_000))
	}
	lines := make(chan string, writers*each)
	readErr := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			readErr <- err
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 64<<10)
		for {
			l, err := br.ReadString('\n')
			if err == io.EOF {
				close(lines)
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- err
				return
			}
			lines <- l
		}
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	w := newCoalescer(raw)
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
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	n := 0
	for l := range lines {
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
