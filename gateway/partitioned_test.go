package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// partitions makes every type durable with n partitions.
func partitions(n int) envOption {
	return func(o *Options) {
		durable(o)
		o.Durable.Streams.Partitions = n
	}
}

// TestPartitionedBatchSplit: with 4 partitions, a request whose events
// fall in several partitions is stored as one frame per partition, on
// <prefix>.ingest.<type>.<partition>, each frame holding that partition's
// events in request order, with Nats-Msg-Ids that differ; its 202 comes
// once every frame is stored. GET /v1/types names the partition subjects.
func TestPartitionedBatchSplit(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, partitions(4))
		syms := []string{"AAPL", "MSFT", "GOOG", "TSLA", "IBM", "AAPL", "NVDA", "MSFT", "AMZN", "AAPL"}
		var evs []string
		for i, s := range syms {
			evs = append(evs, fmt.Sprintf(`{"symbol":%q,"bid":%d,"ask":%d.5,"bid_size":1,"ask_size":1,"venue":"XNAS"}`, s, 100+i, 100+i))
		}
		resp, body := e.post("quote", "application/json", "["+strings.Join(evs, ",")+"]")
		wantAccepted(t, resp, body, len(syms))
		msgs := e.ingestMsgs() // stored before the 202
		want := make(map[int][]float64)
		for i, s := range syms {
			p := schemas.Partition(s, 4)
			want[p] = append(want[p], float64(100+i))
		}
		if len(msgs) != len(want) {
			t.Fatalf("%d frames stored, want one per partition touched (%d)", len(msgs), len(want))
		}
		ids := make(map[string]bool)
		for _, m := range msgs {
			var p int
			if _, err := fmt.Sscanf(m.Subject, e.subj.Ingest(schemas.KindQuote)+".%d", &p); err != nil {
				t.Fatalf("frame on %q: %v", m.Subject, err)
			}
			var got []float64
			for _, ev := range storedEvents(t, append(msgs[:0:0], m)) {
				if q := schemas.Partition(ev.Quote.Symbol, 4); q != p {
					t.Errorf("%s (partition %d) in the frame of partition %d", ev.Quote.Symbol, q, p)
				}
				got = append(got, ev.Quote.Bid)
			}
			if fmt.Sprint(got) != fmt.Sprint(want[p]) {
				t.Errorf("partition %d holds bids %v, want %v (request order)", p, got, want[p])
			}
			ids[m.Header.Get(bus.HeaderMsgID)] = true
		}
		if len(ids) != len(msgs) {
			t.Errorf("Nats-Msg-Ids %v: want %d distinct", ids, len(msgs))
		}
		// A lone request on a quiet gateway: every partition's frame
		// goes out at once (idle), none waits for the partitions' linger.
		if idle := e.counter(`sluice_gateway_batches_flushed_total{reason="idle"}`); idle != uint64(len(msgs)) {
			t.Errorf("%d frames flushed idle, want all %d", idle, len(msgs))
		}
		if p, a := e.srv.batchers[schemas.KindQuote].pending.Load(), e.srv.batchers[schemas.KindQuote].active.Load(); p != 0 || a != 0 {
			t.Errorf("after the 202: %d bytes reserved, %d requests active; want 0", p, a)
		}

		_, body = e.do("GET", "/v1/types", "", nil)
		var types struct {
			Types []struct{ Name, Subject string }
		}
		if err := json.Unmarshal(body, &types); err != nil {
			t.Fatal(err)
		}
		for _, ty := range types.Types {
			if k, _ := schemas.ParseKind(ty.Name); ty.Subject != e.subj.IngestPartitions(k) {
				t.Errorf("GET /v1/types: %s subject %q, want %q", ty.Name, ty.Subject, e.subj.IngestPartitions(k))
			}
		}
	})
}

// TestPartitionedMismatchFailsStart: a gateway whose --partitions differs
// from the ingest stream's fails Start with an error naming both counts.
func TestPartitionedMismatchFailsStart(t *testing.T) {
	e := newTestEnv(t, "h1", nil, partitions(8))
	o := e.srv.opts
	o.Durable.Streams.Partitions = 4
	o.Listen, o.Metrics = "127.0.0.1:0", metrics.NewSet()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), "partitions 8, want 4") {
		t.Fatalf("Start with 4 partitions on a stream of 8: %v", err)
	}
}

// TestPartitionLinger: a partition lingers the type's linger times the
// partition count, at most maxPartitionLinger, never less than the type's.
func TestPartitionLinger(t *testing.T) {
	f := func(linger time.Duration, n int, want time.Duration) {
		t.Helper()
		if got := partitionLinger(linger, n); got != want {
			t.Errorf("partitionLinger(%v, %d) = %v, want %v", linger, n, got, want)
		}
	}
	f(time.Millisecond, 4, 4*time.Millisecond)
	f(time.Millisecond, 8, 8*time.Millisecond)
	f(time.Millisecond, 64, maxPartitionLinger)
	f(20*time.Millisecond, 8, 20*time.Millisecond)
	f(0, 8, 0)
}

// TestPartitionedIdleFlushesEveryPartition: on a quiet type, two requests
// in flight at once whose events fall in different partitions: the first
// one's add leaves its batch for the second (the type is not idle yet),
// and when the second's add leaves the type idle, the first one's batch
// goes out too, as it would in the one batch of an unpartitioned type,
// rather than waiting for its partition's linger (an hour here).
func TestPartitionedIdleFlushesEveryPartition(t *testing.T) {
	t.Parallel()
	be := newBatcherEnv(t, BatchOptions{Linger: time.Hour})
	subj, err := schemas.NewSubjects("test")
	if err != nil {
		t.Fatal(err)
	}
	p := newPartitioned(be.b, subj, schemas.KindQuote, 4, "x.quote.")
	// Two symbols of different partitions.
	a, b := "AAPL", ""
	for i := 0; b == ""; i++ {
		if s := fmt.Sprintf("S%d", i); schemas.Partition(s, 4) != schemas.Partition(a, 4) {
			b = s
		}
	}
	request := func(symbol string) *reqState {
		st := &reqState{}
		ev := plainQuote(sym(symbol))
		ev.ID, ev.Source = symbol, testSource
		st.events = append(st.events, ev)
		st.enc = ev.AppendMsgpack(nil)
		st.ends = []int{len(st.enc)}
		p.parts[0].enter()
		if err := p.parts[0].reserve(len(st.enc)); err != nil {
			t.Fatal(err)
		}
		return st
	}
	first, second := request(a), request(b) // both entered
	now := time.Now().UnixNano()
	t1 := p.add(first, now, false, nil, nil, nil)
	t2 := p.add(second, now, false, nil, nil, nil)
	for i, f := range append(t1, t2...) {
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %d still held on a quiet type once no request is in flight", i)
		}
	}
	if got := be.flushed(flushIdle); got != 2 {
		t.Errorf("%d batches flushed idle, want 2", got)
	}
}

// gatedPub publishes through pub, recording the order of the batches it is
// handed, and holds a batch whose gen is in gate until its channel closes.
type gatedPub struct {
	framePublisher
	mu      sync.Mutex
	order   []uint64
	gate    map[uint64]chan struct{}
	entered chan uint64
}

func (g *gatedPub) publish(b *batcher, f *batch) {
	g.entered <- f.gen
	g.mu.Lock()
	ch := g.gate[f.gen]
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
	g.mu.Lock()
	g.order = append(g.order, f.gen)
	g.mu.Unlock()
	g.framePublisher.publish(b, f)
}

// TestPartitionedPublishesInBatchOrder: a partition's batches reach NATS
// in the order they were filled, whichever goroutine publishes them: a
// request whose events of one partition fill batch 1 and begin batch 2
// publishes batch 1 after it unlocks the batcher, and another request that
// fills batch 2 meanwhile must not publish it first (the stream would
// store the first request's later events before its earlier ones, which
// the partition's order promises against).
func TestPartitionedPublishesInBatchOrder(t *testing.T) {
	t.Parallel()
	be := newBatcherEnv(t, BatchOptions{MaxEvents: 2, Linger: time.Hour})
	g := &gatedPub{framePublisher: be.b.pub, gate: map[uint64]chan struct{}{1: make(chan struct{})}, entered: make(chan uint64, 8)}
	be.b.pub = g
	subj, err := schemas.NewSubjects("test")
	if err != nil {
		t.Fatal(err)
	}
	p := newPartitioned(be.b, subj, schemas.KindQuote, 2, "x.quote.")
	p.arrivals.ewma.Store(1) // busy: no idle flush
	request := func(n int) *reqState {
		st := &reqState{}
		for i := range n {
			ev := plainQuote(sym("AAPL"))
			ev.ID, ev.Source = fmt.Sprintf("e%d", i), testSource
			st.events = append(st.events, ev)
			st.enc = ev.AppendMsgpack(st.enc)
			st.ends = append(st.ends, len(st.enc))
		}
		p.parts[0].enter()
		if err := p.parts[0].reserve(len(st.enc)); err != nil {
			t.Fatal(err)
		}
		return st
	}
	first, second := request(3), request(1)
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		p.add(first, time.Now().UnixNano(), false, nil, nil, nil) // batch 1 full, held in publish; batch 2 begun
	}()
	if gen := <-g.entered; gen != 1 {
		t.Fatalf("batch %d published first, want 1", gen)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.add(second, time.Now().UnixNano(), false, nil, nil, nil) // fills batch 2
	}()
	select {
	case <-g.entered: // batch 2 handed to the publisher while batch 1 is held
	case <-done:
	case <-time.After(200 * time.Millisecond): // waiting for batch 1, as it should
	}
	close(g.gate[1])
	for _, c := range []chan struct{}{firstDone, done} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("an add did not return once batch 1 was published")
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if fmt.Sprint(g.order) != "[1 2]" {
		t.Errorf("batches published in the order %v, want [1 2]", g.order)
	}
}
