package gateway

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// Bounds of a connection's write coalescer.
const (
	// coalesceMaxPending is how many bytes a connection may have waiting
	// for its flusher before a Write blocks (as it would on a full socket
	// buffer): the memory a slow reader can hold per connection.
	coalesceMaxPending = 256 << 10
	// coalesceKeep is the largest buffer an idle connection keeps for
	// the next burst; a larger one is left to the garbage collector.
	coalesceKeep = 32 << 10
	// coalesceCloseTimeout bounds how long Close lets the flusher send
	// what is still pending (an HTTP/2 GOAWAY, a last response).
	coalesceCloseTimeout = time.Second
)

// coalescer turns the many small writes of Go's HTTP servers into few
// syscalls. Go's HTTP/2 server flushes its frame buffer whenever its write
// queue runs empty, and with handlers handing it their frames one at a time
// that is once or twice a response: a write syscall each, which on loopback
// also pays for the receiver's wake-up. Write copies into a pending buffer
// and returns at once; one flusher goroutine, started when the buffer goes
// from empty to non-empty, writes everything pending in one syscall, and
// whatever arrives while that syscall runs goes out in the next. Under load
// the responses of a whole micro-batch leave in one write; a lone response
// waits for one goroutine hand-off, not for a timer.
//
// Lock order: wmu, then mu.
//
// A write error is returned by every later Write; bytes that Write
// accepted are not guaranteed to reach the peer, as with the kernel's own
// socket buffer.
type coalescer struct {
	conn net.Conn

	// wmu serializes Writes, so that one that waits for room is not
	// interleaved with another (a net.Conn's Writes are atomic).
	wmu sync.Mutex

	mu      sync.Mutex
	drained sync.Cond // broadcast when pending shrinks or the flusher stops
	pending []byte    // bytes accepted and not yet handed to conn
	spare   []byte    // the other buffer, reused by the next swap
	busy    bool      // a flusher goroutine runs
	err     error     // the first write error; later writes fail with it
	closed  bool      // Close was called
}

func newCoalescer(c net.Conn) *coalescer {
	w := &coalescer{conn: c}
	w.drained.L = &w.mu
	return w
}

// Write queues p for the flusher. It blocks while coalesceMaxPending bytes
// wait, and fails once a write has failed or the connection is closed.
func (w *coalescer) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	n := 0
	for len(p) > 0 {
		for w.err == nil && !w.closed && len(w.pending) >= coalesceMaxPending {
			w.drained.Wait()
		}
		if w.err != nil || w.closed {
			err := w.err
			if err == nil {
				err = net.ErrClosed
			}
			w.mu.Unlock()
			return n, err
		}
		k := min(len(p), coalesceMaxPending-len(w.pending))
		w.pending = append(w.pending, p[:k]...)
		n += k
		p = p[k:]
		if !w.busy {
			w.busy = true
			go w.flush()
		}
	}
	w.mu.Unlock()
	return n, nil
}

// flush writes what is pending until nothing is, then stops.
func (w *coalescer) flush() {
	// Let the goroutines that are about to write (the HTTP/2 serve loop
	// with the next frame, handlers finishing the same batch) run first:
	// one yield often doubles what the syscall carries.
	runtime.Gosched()
	w.mu.Lock()
	for len(w.pending) > 0 && w.err == nil {
		b := w.pending
		w.pending, w.spare = w.spare[:0], nil
		w.drained.Broadcast()
		w.mu.Unlock()
		_, err := w.conn.Write(b)
		w.mu.Lock()
		w.spare = b[:0]
		if err != nil && w.err == nil {
			w.err = err
		}
	}
	w.busy = false
	w.pending = w.pending[:0]
	if cap(w.pending) > coalesceKeep {
		w.pending = nil
	}
	if cap(w.spare) > coalesceKeep {
		w.spare = nil
	}
	closed := w.closed
	w.drained.Broadcast()
	w.mu.Unlock()
	if closed {
		_ = w.conn.Close()
	}
}

// waitIdle waits until the flusher has written everything pending (or
// failed) and returns the write error, if any.
func (w *coalescer) waitIdle() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		w.drained.Wait()
	}
	return w.err
}

// Close closes the connection once what is pending has been written, within
// coalesceCloseTimeout; the read side is shut at once, so that a reader
// blocked on the connection returns.
func (w *coalescer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return net.ErrClosed
	}
	w.closed = true
	w.drained.Broadcast()
	if !w.busy {
		w.mu.Unlock()
		return w.conn.Close()
	}
	w.mu.Unlock()
	// The flusher closes the connection when it is done.
	if cr, ok := w.conn.(interface{ CloseRead() error }); ok {
		_ = cr.CloseRead()
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(coalesceCloseTimeout))
	return nil
}
