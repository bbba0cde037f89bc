package workers

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nuid"

	"github.com/sluice-dev/sluice/schemas"
)

// DefaultReportInterval is how often a worker publishes its load report.
const DefaultReportInterval = 100 * time.Millisecond

// load is the queue depth a worker reports on <prefix>.load.<group>: events
// received and not yet processed, and how fast they drain. Updated once per
// batch, never per event.
type load struct {
	id        string
	pending   atomic.Int64 // events received, not yet started
	pendBytes atomic.Int64
	inflight  atomic.Int64 // events being processed
	done      atomic.Int64 // events processed since start
	busy      atomic.Int64 // nanoseconds spent processing since start
	stop      chan struct{}
	stopped   chan struct{}
}

func newLoad() *load {
	return &load{id: nuid.Next(), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// frameCount reads the event count of a batch frame without decoding it.
func frameCount(data []byte) int64 {
	r := schemas.NewReader(data)
	n, err := schemas.ReadBatchFrame(&r)
	if err != nil {
		return 0
	}
	return int64(n)
}

func (l *load) received(n int64, bytes int) {
	l.pending.Add(n)
	l.pendBytes.Add(int64(bytes))
}

func (l *load) started(n int64, bytes int) {
	l.pending.Add(-n)
	l.pendBytes.Add(-int64(bytes))
	l.inflight.Add(n)
}

func (l *load) finished(n int64, took time.Duration) {
	l.inflight.Add(-n)
	l.done.Add(n)
	l.busy.Add(int64(took))
}

// abandoned forgets a batch that will not be processed.
func (l *load) abandoned(n int64, bytes int) {
	l.pending.Add(-n)
	l.pendBytes.Add(-int64(bytes))
}

// report publishes the worker's load every interval until stopReports,
// then one last report with Stopping set.
func (w *Worker) report() {
	l := w.load
	defer close(l.stopped)
	iv := w.opts.ReportInterval
	t := time.NewTicker(iv)
	defer t.Stop()
	subject := w.opts.Subjects.Load(w.opts.Group)
	lr := schemas.LoadReport{Worker: l.id, Group: w.opts.Group, IntervalMS: iv.Milliseconds()}
	var buf []byte
	last, lastAt, lastBusy := l.done.Load(), time.Now(), l.busy.Load()
	send := func(now time.Time) {
		done, busy := l.done.Load(), l.busy.Load()
		lr.PendingEvents, lr.PendingBytes, lr.InFlight = l.pending.Load(), l.pendBytes.Load(), l.inflight.Load()
		lr.Origins = w.origins.appendLoads(lr.Origins[:0])
		if w.dur != nil {
			w.dur.readPending(&lr, iv)
		}
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			lr.Rate = float64(done-last) / dt
		}
		if b := time.Duration(busy - lastBusy).Seconds(); b > 0 && done > last {
			lr.MaxRate = float64(done-last) / b * float64(w.opts.Concurrency)
		}
		last, lastAt, lastBusy = done, now, busy
		buf = lr.AppendMsgpack(buf[:0])
		_ = w.nc.Publish(subject, buf)
	}
	send(time.Now())
	for {
		select {
		case now := <-t.C:
			send(now)
		case <-l.stop:
			lr.Stopping = true
			send(time.Now())
			return
		}
	}
}

// stopReports ends the reporter after its last (Stopping) report.
func (w *Worker) stopReports() {
	select {
	case <-w.load.stop:
	default:
		close(w.load.stop)
		<-w.load.stopped
	}
}
