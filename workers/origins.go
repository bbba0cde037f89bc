package workers

import (
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// DefaultDoneLinger is how long a worker gathers finished batches before it
// tells their gateways in one done frame each.
const DefaultDoneLinger = time.Millisecond

// origins tracks, per origin (a batch's reply subject: one per gateway and
// kind), the events this worker holds, for the load report's split, and the
// batches it finished, for the done frames that let each gateway count its
// group's depth exactly (see schemas.AppendDoneFrame). One lock, taken
// twice per batch (received, finished), never per event.
type origins struct {
	nc     *nats.Conn
	linger time.Duration

	mu      sync.Mutex
	m       map[string]*origin
	pending bool // some origin has sequences to send

	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// origin is one origin's state, under origins.mu.
type origin struct {
	events int64    // received, not yet finished
	done   []uint64 // finished batches not yet sent
	idle   int      // load reports since it last held anything
}

func newOrigins(nc *nats.Conn, linger time.Duration) *origins {
	return &origins{nc: nc, linger: linger, m: make(map[string]*origin),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// batchSeq reads a batch's HeaderBatch sequence; ok is false for a batch
// without one (a gateway from before done frames, or a test publisher).
func batchSeq(m *nats.Msg) (uint64, bool) {
	if m.Header == nil {
		return 0, false
	}
	v := m.Header.Get(schemas.HeaderBatch)
	if v == "" {
		return 0, false
	}
	s, err := strconv.ParseUint(v, 10, 64)
	return s, err == nil
}

// received counts a batch of n events from reply.
func (o *origins) received(reply string, n int64) {
	if reply == "" {
		return
	}
	o.mu.Lock()
	or := o.m[reply]
	if or == nil {
		or = &origin{}
		o.m[reply] = or
	}
	or.events += n
	or.idle = 0
	o.mu.Unlock()
}

// finished counts a batch out (processed or abandoned: either way it no
// longer waits here) and, when it has a sequence, queues it for the next
// done frame to reply.
func (o *origins) finished(reply string, seq uint64, hasSeq bool, n int64) {
	if reply == "" {
		return
	}
	o.mu.Lock()
	or := o.m[reply]
	if or == nil { // received before a restart of the table; cannot happen
		or = &origin{}
		o.m[reply] = or
	}
	or.events -= n
	signal := false
	if hasSeq {
		or.done = append(or.done, seq)
		signal = !o.pending
		o.pending = true
	}
	o.mu.Unlock()
	if signal {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// run sends done frames: once a batch finishes it waits linger for more to
// join, then sends one frame per origin, until stop; then it sends what is
// left and returns.
func (o *origins) run() {
	defer close(o.stopped)
	msg := nats.Msg{Header: nats.Header{schemas.HeaderFrame: {schemas.FrameDoneV1}}}
	var buf []byte
	type frame struct {
		reply string
		seqs  []uint64
	}
	var frames []frame // reused: one per origin with finished batches
	send := func() {
		o.mu.Lock()
		o.pending = false
		n := 0
		for reply, or := range o.m {
			if len(or.done) == 0 {
				continue
			}
			if n == len(frames) {
				frames = append(frames, frame{})
			}
			frames[n].reply = reply
			frames[n].seqs = append(frames[n].seqs[:0], or.done...)
			or.done = or.done[:0]
			n++
		}
		o.mu.Unlock()
		for _, f := range frames[:n] {
			buf = schemas.AppendDoneFrame(buf[:0], f.seqs)
			msg.Subject, msg.Data = f.reply, buf
			_ = o.nc.PublishMsg(&msg) // a lost frame expires at the gateway
		}
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-o.wake:
			t.Reset(o.linger)
			select {
			case <-t.C:
			case <-o.stop:
				send()
				return
			}
			send()
		case <-o.stop:
			send()
			return
		}
	}
}

// close sends the last done frames and stops run; run must have started.
func (o *origins) close() {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	<-o.stopped
}

// appendLoads appends the origins holding events to dst, for a load report,
// and forgets origins idle for a while (gateways that went away).
func (o *origins) appendLoads(dst []schemas.OriginLoad) []schemas.OriginLoad {
	o.mu.Lock()
	defer o.mu.Unlock()
	for reply, or := range o.m {
		if or.events != 0 {
			dst = append(dst, schemas.OriginLoad{Reply: reply, Events: or.events})
			continue
		}
		if or.idle++; or.idle > 100 && len(or.done) == 0 {
			delete(o.m, reply)
		}
	}
	return dst
}
