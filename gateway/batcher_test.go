package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

const testIngest = "test.ingest.quote"

// batcherEnv is a batcher publishing on a real NATS connection, with a
// subscriber on its subject.
type batcherEnv struct {
	b      *batcher
	frames *frameSub
	set    *metrics.Set
	nc     *nats.Conn
}

func newBatcherEnv(t *testing.T, bo BatchOptions) *batcherEnv {
	t.Helper()
	_, url := opstest.RunNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	o := Options{Batch: bo}
	o.setDefaults()
	set := metrics.NewSet()
	b := newBatcher(corePub{nc: nc}, testIngest, "_INBOX.test", o.Batch, newGatewayMetrics(set))
	sub, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	ch := make(chan *nats.Msg, 1024)
	if _, err := sub.ChanSubscribe(testIngest, ch); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	return &batcherEnv{b: b, frames: &frameSub{t: t, ch: ch}, set: set, nc: nc}
}

func (be *batcherEnv) flushed(reason int) uint64 {
	return be.set.GetOrCreateCounter(fmt.Sprintf(`sluice_gateway_batches_flushed_total{reason=%q}`, flushReasonNames[reason])).Get()
}

// encodeQuotes encodes n quote events with ids prefix-0, prefix-1, ...
func encodeQuotes(prefix string, n int) (enc []byte, ends []int) {
	for i := 0; i < n; i++ {
		ev := plainQuote(sym("AAPL"))
		ev.ID = fmt.Sprintf("%s-%d", prefix, i)
		ev.Source = testSource
		enc = ev.AppendMsgpack(enc)
		ends = append(ends, len(enc))
	}
	return enc, ends
}

// request plays one request's part: enter, reserve, add, wait for publish.
func (be *batcherEnv) request(t *testing.T, prefix string, n int) error {
	be.b.enter()
	enc, ends := encodeQuotes(prefix, n)
	if err := be.b.reserve(len(enc)); err != nil {
		be.b.leave()
		return err
	}
	touched := be.b.add(enc, ends, time.Now().UnixNano(), false, nil, nil)
	for _, f := range touched {
		<-f.done
		if f.err != nil {
			return f.err
		}
	}
	return nil
}

// TestBatcherFlushCount sends 25 single-event requests at once while another
// request holds the batch open: frames of 10, 10, then the rest when the
// holder leaves.
func TestBatcherFlushCount(t *testing.T) {
	t.Parallel()
	be := newBatcherEnv(t, BatchOptions{MaxEvents: 10, Linger: time.Hour})
	be.b.enter() // a request on its way: no idle flush
	var wg sync.WaitGroup
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := be.request(t, fmt.Sprintf("r%d", i), 1); err != nil {
				t.Error(err)
			}
		}()
	}
	_, first := be.frames.next()
	_, second := be.frames.next()
	if len(first) != 10 || len(second) != 10 {
		t.Fatalf("frames of %d and %d events, want 10 and 10", len(first), len(second))
	}
	// Every request has added its event once the open batch holds the last
	// five (active alone can read 1 before the last goroutines entered).
	checkFor(t, func() error {
		be.b.mu.Lock()
		defer be.b.mu.Unlock()
		n := 0
		if be.b.cur != nil {
			n = be.b.cur.n
		}
		return wantCount(uint64(n), 5)
	})
	checkFor(t, func() error { return wantCount(uint64(be.b.active.Load()), 1) })
	be.b.leave()
	_, rest := be.frames.next()
	wg.Wait()
	if len(rest) != 5 {
		t.Fatalf("last frame has %d events, want 5", len(rest))
	}
	seen := map[string]bool{}
	for _, ev := range append(append(first, second...), rest...) {
		if seen[ev.ID] {
			t.Errorf("event %s twice", ev.ID)
		}
		seen[ev.ID] = true
	}
	if c, i := be.flushed(flushCount), be.flushed(flushIdle); c != 2 || i != 1 {
		t.Errorf("flushed by count %d, idle %d; want 2 and 1", c, i)
	}
	if p := be.b.pending.Load(); p != 0 {
		t.Errorf("pending bytes %d after every batch went out", p)
	}
}

// TestBatcherFlushCountHTTP sends 25 concurrent requests through the
// gateway with MaxEvents 10: no frame holds more than 10 events, and every
// accepted id arrives once.
func TestBatcherFlushCountHTTP(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.Batch.MaxEvents = 10; o.Batch.Linger = 50 * time.Millisecond })
		frames := e.subscribeFrames(schemas.KindQuote)
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted := map[string]bool{}
		for i := 0; i < 25; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body := e.post("quote", "application/json", quoteJSONBody(fmt.Sprintf("S%d", i)))
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("status %d: %s", resp.StatusCode, body)
					return
				}
				ids := wantAccepted(t, resp, body, 1)
				mu.Lock()
				accepted[ids[0]] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
		msgs, evs := frames.events(25)
		for _, m := range msgs {
			if n := len(decodeFrame(t, m)); n > 10 {
				t.Errorf("frame of %d events, want <= 10", n)
			}
		}
		for _, ev := range evs {
			if !accepted[ev.ID] {
				t.Errorf("event %s on NATS was not accepted, or twice", ev.ID)
			}
			delete(accepted, ev.ID)
		}
	})
}

// TestBatcherFlushBytes adds 7 events in one request with room for 3 per
// frame: frames of 3, 3 (bytes) and 1 (idle), none over MaxBytes.
func TestBatcherFlushBytes(t *testing.T) {
	t.Parallel()
	enc, _ := encodeQuotes("x", 1)
	maxBytes := 5 + 3*len(enc)
	be := newBatcherEnv(t, BatchOptions{MaxBytes: maxBytes, Linger: time.Hour})
	if err := be.request(t, "b", 7); err != nil {
		t.Fatal(err)
	}
	var counts []int
	for range 3 {
		msg, evs := be.frames.next()
		if len(msg.Data) > maxBytes {
			t.Errorf("frame of %d bytes, max %d", len(msg.Data), maxBytes)
		}
		counts = append(counts, len(evs))
	}
	if fmt.Sprint(counts) != "[3 3 1]" {
		t.Errorf("frames of %v events, want [3 3 1]", counts)
	}
	if b, i := be.flushed(flushBytes), be.flushed(flushIdle); b != 2 || i != 1 {
		t.Errorf("flushed by bytes %d, idle %d; want 2 and 1", b, i)
	}

	// An event larger than MaxBytes on its own still goes out, alone.
	big := plainQuote(sym(string(make([]byte, maxBytes))))
	encBig := big.AppendMsgpack(nil)
	be.b.enter()
	if err := be.b.reserve(len(encBig)); err != nil {
		t.Fatal(err)
	}
	for _, f := range be.b.add(encBig, []int{len(encBig)}, time.Now().UnixNano(), false, nil, nil) {
		<-f.done
	}
	if _, evs := be.frames.next(); len(evs) != 1 {
		t.Errorf("oversized event: frame of %d events", len(evs))
	}
}

// TestBatcherLinger holds a request active so that the idle flush cannot
// happen: the batch goes out when Linger expires, not before.
func TestBatcherLinger(t *testing.T) {
	t.Parallel()
	const linger = 50 * time.Millisecond
	be := newBatcherEnv(t, BatchOptions{Linger: linger})
	be.b.enter() // the holder
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- be.request(t, "l", 2) }()
	_, evs := be.frames.next()
	if elapsed := time.Since(start); elapsed < linger {
		t.Errorf("frame after %v, before Linger %v", elapsed, linger)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || be.flushed(flushLinger) != 1 || be.flushed(flushIdle) != 0 {
		t.Errorf("%d events; flushed by linger %d, idle %d", len(evs), be.flushed(flushLinger), be.flushed(flushIdle))
	}
	be.b.leave() // nothing left to flush
	if be.flushed(flushIdle) != 0 {
		t.Error("idle flush of an empty batch")
	}
}

// TestBatcherIdleFlush: with Linger 1 s, a lone request's batch goes out by
// the idle flush, not the linger, because nobody else is about to join it
// (the reason is counted; no time bound, which -race would break).
func TestBatcherIdleFlush(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.Batch.Linger = time.Second })
		frames := e.subscribeFrames(schemas.KindQuote)
		resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"))
		wantAccepted(t, resp, body, 1)
		frames.next()
		if got := e.counter(`sluice_gateway_batches_flushed_total{reason="idle"}`); got != 1 {
			t.Errorf("idle flushes %d, want 1", got)
		}
	})
}

// TestBatcherMemoryBound checks the reservation arithmetic: past
// MaxPendingBytes reserve fails with ErrBatcherFull and changes nothing;
// publishing gives the bytes back.
func TestBatcherMemoryBound(t *testing.T) {
	t.Parallel()
	be := newBatcherEnv(t, BatchOptions{MaxPendingBytes: 200, Linger: time.Hour})
	if err := be.b.reserve(120); err != nil {
		t.Fatal(err)
	}
	if err := be.b.reserve(81); !errors.Is(err, ErrBatcherFull) {
		t.Fatalf("reserve past the bound: %v", err)
	}
	if p := be.b.pending.Load(); p != 120 {
		t.Fatalf("pending %d after a refused reserve, want 120", p)
	}
	if err := be.b.reserve(80); err != nil {
		t.Fatalf("reserve up to the bound: %v", err)
	}
	be.b.pending.Add(-200)

	enc, ends := encodeQuotes("m", 1)
	if len(enc) > 200 || len(enc) < 100 {
		t.Fatalf("test event of %d bytes does not fit", len(enc))
	}
	be.b.enter() // holder: the batch stays in the batcher
	be.b.enter()
	if err := be.b.reserve(len(enc)); err != nil {
		t.Fatal(err)
	}
	touched := be.b.add(enc, ends, time.Now().UnixNano(), false, nil, nil)
	if err := be.b.reserve(200 - len(enc) + 1); !errors.Is(err, ErrBatcherFull) {
		t.Fatalf("bytes held by a filling batch do not count: %v", err)
	}
	be.b.leave()
	<-touched[0].done
	if p := be.b.pending.Load(); p != 0 {
		t.Errorf("pending %d after publish", p)
	}
}

// TestBatcherShutdownFlush publishes a filling batch on flushAll.
func TestBatcherShutdownFlush(t *testing.T) {
	t.Parallel()
	be := newBatcherEnv(t, BatchOptions{Linger: time.Hour})
	be.b.enter()
	be.b.enter()
	enc, ends := encodeQuotes("s", 2)
	_ = be.b.reserve(len(enc))
	touched := be.b.add(enc, ends, time.Now().UnixNano(), false, nil, nil)
	be.b.flushAll()
	<-touched[0].done
	msg, evs := be.frames.next()
	if len(evs) != 2 || msg.Reply != "_INBOX.test" {
		t.Errorf("%d events, reply %q: want 2 and the inbox (an event waits)", len(evs), msg.Reply)
	}
	if be.flushed(flushShutdown) != 1 {
		t.Error("not counted as a shutdown flush")
	}
	be.b.leave()
}

// TestBatcherPublishError closes the NATS connection: the requests whose
// batch could not be handed over get 503, and the error is counted.
func TestBatcherPublishError(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		e.nc.Close()
		resp, body := e.post("quote", "application/json", quoteJSONBody("A"))
		wantProblem(t, resp, body, http.StatusServiceUnavailable, "handing the batch to NATS")
		if got := e.counter(`sluice_gateway_nats_publish_errors_total`); got != 1 {
			t.Errorf("publish errors %d, want 1", got)
		}
		if p := e.srv.batchers[schemas.KindQuote].pending.Load(); p != 0 {
			t.Errorf("pending %d after a failed publish", p)
		}
		// A request waiting for results waits for its batch's publish
		// before its reply: the failed publish must end the request with
		// its 503, not with a 504 at the request timeout, and free its
		// reply slot.
		resp, body = e.post("quote", "application/json", quoteJSONBody("B"), "Prefer", "return=representation")
		wantProblem(t, resp, body, http.StatusServiceUnavailable, "handing the batch to NATS")
		if n := len(e.srv.replies.slots) - len(e.srv.replies.free); n != 0 {
			t.Errorf("%d reply slots still taken", n)
		}
	})
}

// TestBatcherConcurrent races many requests of various sizes through one
// batcher (run with -race) and checks that every event arrives once and
// that the accounting returns to zero.
func TestBatcherConcurrent(t *testing.T) {
	t.Parallel()
	be := newBatcherEnv(t, BatchOptions{MaxEvents: 7, MaxBytes: 2048, Linger: time.Millisecond})
	const workers, per = 8, 40
	var wg sync.WaitGroup
	total := 0
	for w := 0; w < workers; w++ {
		for i := 0; i < per; i++ {
			total += 1 + (w+i)%5
		}
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := be.request(t, fmt.Sprintf("w%d-%d", w, i), 1+(w+i)%5); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	msgs, evs := be.frames.events(total)
	wg.Wait()
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.ID] {
			t.Fatalf("event %s twice", ev.ID)
		}
		seen[ev.ID] = true
	}
	for _, m := range msgs {
		if len(m.Data) > 2048 {
			t.Errorf("frame of %d bytes", len(m.Data))
		}
	}
	if p, a := be.b.pending.Load(), be.b.active.Load(); p != 0 || a != 0 {
		t.Errorf("pending %d, active %d after the run", p, a)
	}
}

// TestBatcherBusyWaitsForLinger: when requests arrive closer together than
// the linger time, a batch nobody is about to join still waits (up to
// Linger) for the next one instead of going out with one event.
func TestBatcherBusyWaitsForLinger(t *testing.T) {
	t.Parallel()
	const linger = 150 * time.Millisecond
	be := newBatcherEnv(t, BatchOptions{Linger: linger})
	be.b.mu.Lock()
	be.b.gapEWMA = int64(10 * time.Microsecond) // a busy stream
	be.b.lastAdd = time.Now().UnixNano()
	be.b.mu.Unlock()
	start := time.Now()
	if err := be.request(t, "busy", 1); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < linger {
		t.Errorf("batch out after %v: under load it should wait for the linger %v", elapsed, linger)
	}
	if be.flushed(flushLinger) != 1 || be.flushed(flushIdle) != 0 {
		t.Errorf("flushed by linger %d, idle %d; want 1 and 0", be.flushed(flushLinger), be.flushed(flushIdle))
	}
}

// TestBatcherLingerOnAdd: a batch whose linger is over goes out when the
// next request arrives, even though its timer has not fired (a busy
// process runs timers late; here the linger is an hour), and that
// request's events start the next batch.
func TestBatcherLingerOnAdd(t *testing.T) {
	t.Parallel()
	const linger = time.Hour
	be := newBatcherEnv(t, BatchOptions{Linger: linger})
	be.b.enter() // the holder: no idle flush
	t0 := time.Now().UnixNano()
	add := func(prefix string, arrived int64) []*batch {
		t.Helper()
		be.b.enter()
		enc, ends := encodeQuotes(prefix, 1)
		if err := be.b.reserve(len(enc)); err != nil {
			t.Fatal(err)
		}
		return be.b.add(enc, ends, arrived, false, nil, nil)
	}
	first := add("a", t0)
	add("b", t0+int64(linger)/2)        // within the linger: the same batch
	third := add("c", t0+int64(linger)) // the linger is over
	select {
	case <-first[0].done:
	case <-time.After(10 * time.Second):
		t.Fatal("the lingered batch did not go out when the next request arrived")
	}
	if _, evs := be.frames.next(); len(evs) != 2 || evs[0].ID != "a-0" || evs[1].ID != "b-0" {
		t.Errorf("frame %+v, want a-0 and b-0", evs)
	}
	if third[0] == first[0] || be.flushed(flushLinger) != 1 {
		t.Errorf("the third request joined the lingered batch (linger flushes %d)", be.flushed(flushLinger))
	}
	be.b.leave() // the third batch goes out idle
	if _, evs := be.frames.next(); len(evs) != 1 || evs[0].ID != "c-0" {
		t.Errorf("frame %+v, want c-0", evs)
	}
}
