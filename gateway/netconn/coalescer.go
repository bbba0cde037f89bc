package netconn

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of a connection's write coalescer.
const (
	// coalesceMaxPending bounds the bytes waiting for the flusher; past it
	// a Write waits for room, as it would on a full socket buffer. With
	// one buffer on its way to the socket and one filling, a connection
	// whose peer does not read holds at most twice this.
	coalesceMaxPending = 128 << 10
	// coalesceCloseTimeout bounds how long a closed connection's flusher
	// may go without sending a byte of what is still pending (an HTTP/2
	// GOAWAY, a last response, a TLS close_notify) before the socket is
	// closed under it: a slow peer that keeps reading gets everything, one
	// that stopped reading is cut.
	coalesceCloseTimeout = time.Second
)

// coalesceBufs holds the buffers of idle connections (none grows past
// coalesceMaxPending), so that an idle connection keeps none of its own.
var coalesceBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 4<<10)
	return &b
}}

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
// It behaves as a socket buffer in user space: bytes that Write accepted
// are sent whatever deadline is set later (TLS sets one in the past right
// after queueing its close_notify), a write deadline bounds only the
// Writes themselves (one made past its deadline, or waiting for room past
// it, fails with os.ErrDeadlineExceeded), a failed socket write fails every
// later Write, and Close and CloseWrite take effect once what is pending is
// sent (Close, unless no byte moves for coalesceCloseTimeout). Unlike the
// kernel's buffer it does not outlive the process: [Listener.Drain] waits
// for it.
//
// Lock order: wmu, then mu.
type coalescer struct {
	conn     net.Conn
	flushing *atomic.Int64 // flushers running on the listener, or nil

	// wmu serializes Writes, so that one that waits for room is not
	// interleaved with another (a net.Conn's Writes are atomic).
	wmu sync.Mutex

	mu         sync.Mutex
	cond       sync.Cond // broadcast when room is made, a deadline moves or the flusher stops
	pending    *[]byte   // bytes accepted and not yet handed to conn; nil when idle
	spare      *[]byte   // the buffer back from the socket, reused by the next swap
	busy       bool      // a flusher goroutine runs
	err        error     // the first socket write error; later writes fail with it
	deadline   time.Time // the write deadline, applied to Writes
	closed     bool      // Close was called
	closeWrite bool      // CloseWrite was called
	limit      int       // bytes pending past which a Write waits; 0: coalesceMaxPending

	closeOnce sync.Once
	closeErr  error
}

func newCoalescer(c net.Conn, flushing *atomic.Int64) *coalescer {
	w := &coalescer{conn: c, flushing: flushing}
	w.cond.L = &w.mu
	return w
}

// Write queues p for the flusher. It waits while coalesceMaxPending bytes
// (or the bound setLimit set) are pending, and fails once a socket write has failed, after Close or
// CloseWrite, or past the write deadline.
func (w *coalescer) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	var wake *time.Timer // wakes this Write at its deadline
	var armed time.Time  // the deadline wake is set for
	defer func() {
		if wake != nil {
			wake.Stop()
		}
	}()
	n := 0
	for len(p) > 0 {
		for {
			if err := w.writeErr(); err != nil {
				return n, err
			}
			if w.pending == nil || len(*w.pending) < w.maxPending() {
				break
			}
			if !w.deadline.IsZero() && !w.deadline.Equal(armed) {
				if wake != nil {
					wake.Stop()
				}
				wake, armed = time.AfterFunc(time.Until(w.deadline), w.broadcast), w.deadline
			}
			w.cond.Wait()
		}
		if w.pending == nil {
			w.pending = coalesceBufs.Get().(*[]byte)
		}
		k := min(len(p), w.maxPending()-len(*w.pending))
		*w.pending = appendBounded(*w.pending, p[:k])
		n += k
		p = p[k:]
		if !w.busy {
			w.busy = true
			if w.flushing != nil {
				w.flushing.Add(1)
			}
			go w.flush()
		}
	}
	return n, nil
}

// maxPending is the bytes pending past which a Write waits; w.mu is held.
func (w *coalescer) maxPending() int {
	if w.limit > 0 {
		return w.limit
	}
	return coalesceMaxPending
}

// setLimit bounds the bytes pending to n (0 or less: coalesceMaxPending,
// and never more), as [SetNotSentLowat] bounds the kernel's unsent bytes.
func (w *coalescer) setLimit(n int) {
	w.mu.Lock()
	w.limit = 0
	if n > 0 && n < coalesceMaxPending {
		w.limit = n
	}
	w.mu.Unlock()
	w.broadcast()
}

// writeErr is why a Write cannot queue now, or nil.
func (w *coalescer) writeErr() error {
	switch {
	case w.err != nil:
		return w.err
	case w.closed || w.closeWrite:
		return net.ErrClosed
	case !w.deadline.IsZero() && !time.Now().Before(w.deadline):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// appendBounded appends p to b, growing b at most to coalesceMaxPending
// (append's own growth would overshoot the bound).
func appendBounded(b, p []byte) []byte {
	if need := len(b) + len(p); need > cap(b) {
		nb := make([]byte, len(b), min(max(2*cap(b), need), coalesceMaxPending))
		copy(nb, b)
		b = nb
	}
	return append(b, p...)
}

func (w *coalescer) broadcast() {
	w.mu.Lock()
	w.cond.Broadcast()
	w.mu.Unlock()
}

// flush writes what is pending until nothing is, then stops: it returns
// the buffers to the pool and carries out a Close or CloseWrite that
// waited for it.
func (w *coalescer) flush() {
	// Let the goroutines that are about to write (the HTTP/2 serve loop
	// with the next frame, handlers finishing the same batch) run first:
	// one yield often adds to what the syscall carries.
	runtime.Gosched()
	w.mu.Lock()
	for w.pending != nil && len(*w.pending) > 0 && w.err == nil {
		b, closed := w.pending, w.closed
		w.pending, w.spare = w.spare, nil
		w.cond.Broadcast()
		w.mu.Unlock()
		err := w.write(*b, closed)
		w.mu.Lock()
		*b = (*b)[:0]
		if w.pending == nil {
			w.pending = b
		} else {
			w.spare = b
		}
		if err != nil && w.err == nil {
			w.err = err
		}
	}
	w.busy = false
	release(w.pending)
	release(w.spare)
	w.pending, w.spare = nil, nil
	closed, closeWrite := w.closed, w.closeWrite
	w.cond.Broadcast()
	w.mu.Unlock()
	switch {
	case closed:
		_ = w.closeConn()
	case closeWrite:
		_ = w.closeConnWrite()
	}
	if w.flushing != nil {
		w.flushing.Add(-1)
	}
}

func release(b *[]byte) {
	if b != nil {
		*b = (*b)[:0]
		coalesceBufs.Put(b)
	}
}

// SetWriteDeadline sets the deadline of later Writes; it does not apply to
// bytes already accepted.
func (w *coalescer) SetWriteDeadline(t time.Time) {
	w.mu.Lock()
	w.deadline = t
	w.cond.Broadcast()
	w.mu.Unlock()
}

// Close closes the connection once what is pending has been sent, or once
// no byte of it has moved for coalesceCloseTimeout; the read side is shut
// at once, so that a reader blocked on the connection returns. It does not
// wait for the flusher.
func (w *coalescer) Close() error {
	busy, err := w.shut(false)
	if err != nil {
		return err
	}
	if !busy {
		return w.closeConn()
	}
	// The flusher closes the connection when it is done. The socket's
	// write deadline is the coalescer's alone (conn keeps the
	// server's deadlines for its Writes), so it can bound the flusher
	// here: write extends it while bytes move.
	if cr, ok := w.conn.(interface{ CloseRead() error }); ok {
		_ = cr.CloseRead()
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(coalesceCloseTimeout))
	return nil
}

// write writes b to the connection. Only Close sets the socket's write
// deadline, so a write times out only on a closed connection: after Close
// every socket write gets coalesceCloseTimeout (closed says Close came
// before this one), and one that times out having sent something gets as
// long again for the rest. What cuts a closed connection is a second in
// which no byte moves.
func (w *coalescer) write(b []byte, closed bool) error {
	for {
		if closed {
			if err := w.conn.SetWriteDeadline(time.Now().Add(coalesceCloseTimeout)); err != nil {
				return err
			}
		}
		n, err := w.conn.Write(b)
		if err == nil || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		b, closed = b[n:], true
	}
}

// CloseWrite half-closes the connection once what is pending has been
// sent; later Writes fail. It does not wait for the flusher.
func (w *coalescer) CloseWrite() error {
	busy, err := w.shut(true)
	if err != nil {
		return err
	}
	if busy {
		return nil // the flusher half-closes when it is done
	}
	return w.closeConnWrite()
}

// shut marks the coalescer closed (or, with half, closed for writing),
// wakes waiting Writes and reports whether a flusher runs, which then
// carries out the close; a second Close, or a CloseWrite after either,
// fails with net.ErrClosed.
func (w *coalescer) shut(half bool) (busy bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || (half && w.closeWrite) {
		return false, net.ErrClosed
	}
	if half {
		w.closeWrite = true
	} else {
		w.closed = true
	}
	w.cond.Broadcast()
	return w.busy, nil
}

// closeConn closes the connection, once.
func (w *coalescer) closeConn() error {
	w.closeOnce.Do(func() { w.closeErr = w.conn.Close() })
	return w.closeErr
}

func (w *coalescer) closeConnWrite() error {
	if cw, ok := w.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
