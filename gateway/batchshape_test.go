package gateway

import (
	"sync"
	"testing"
	"time"
)

// The two shapes a micro-batcher can take, stripped to their hand-off:
// sluice's (the caller appends under a short lock; see [batcher]) and
// STYLE.md's (one goroutine owns the batch, driven by one select over
// input, timer and stop, fed through a channel). DECISIONS.md quotes
// these figures: go test -run '^$' -bench BatcherShape -benchmem -cpu 1,2,8 ./gateway
// Neither counts the work both shapes share (encoding before, publishing
// after); a request of the loop shape would also need a hand-back to learn
// its batch's fate, which is not counted either.

const shapeMaxEvents = 128

var shapeEvent = make([]byte, 100)

// shapeLock is the caller-appends shape.
type shapeLock struct {
	mu  sync.Mutex
	buf []byte
	n   int
	out int
}

func (b *shapeLock) add(e []byte) {
	b.mu.Lock()
	b.buf = append(b.buf, e...)
	b.n++
	if b.n == shapeMaxEvents {
		b.out += len(b.buf)
		b.buf = b.buf[:0]
		b.n = 0
	}
	b.mu.Unlock()
}

// shapeLoop is the select-loop shape.
type shapeLoop struct {
	in   chan []byte
	stop chan struct{}
	done chan int
}

func newShapeLoop() *shapeLoop {
	b := &shapeLoop{in: make(chan []byte, 1024), stop: make(chan struct{}), done: make(chan int)}
	go func() {
		var buf []byte
		n, out := 0, 0
		t := time.NewTimer(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case e := <-b.in:
				buf = append(buf, e...)
				n++
				if n == shapeMaxEvents {
					out += len(buf)
					buf, n = buf[:0], 0
				}
			case <-t.C:
				out += len(buf)
				buf, n = buf[:0], 0
				t.Reset(time.Millisecond)
			case <-b.stop:
				b.done <- out
				return
			}
		}
	}()
	return b
}

func BenchmarkBatcherShapeLock(b *testing.B) {
	var s shapeLock
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.add(shapeEvent)
		}
	})
}

func BenchmarkBatcherShapeSelectLoop(b *testing.B) {
	s := newShapeLoop()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.in <- shapeEvent
		}
	})
	close(s.stop)
	<-s.done
}
