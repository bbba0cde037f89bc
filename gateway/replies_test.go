package gateway

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

func newTestReplyTable(n int) (*replyTable, *metrics.Set) {
	set := metrics.NewSet()
	return newReplyTable(n, newGatewayMetrics(set)), set
}

func dropped(set *metrics.Set) uint64 {
	return set.GetOrCreateCounter(`sluice_gateway_replies_dropped_total`).Get()
}

func okResult(corr uint64, seq uint32) *schemas.Result {
	return &schemas.Result{Corr: corr, Seq: seq, Status: http.StatusOK, Event: []byte{0x80}}
}

// isDone reports whether w's done channel holds its signal, without
// consuming it for good.
func isDone(w *waiter) bool {
	select {
	case <-w.done:
		w.done <- struct{}{}
		return true
	default:
		return false
	}
}

func TestReplyTableDeliver(t *testing.T) {
	rt, set := newTestReplyTable(2)
	corr, w, err := rt.acquire(2)
	if err != nil {
		t.Fatal(err)
	}
	rt.deliver(&schemas.Result{Corr: corr, Seq: 1, Status: 422, Errors: []schemas.FieldError{{Field: "bid", Code: "x"}}})
	if isDone(w) {
		t.Fatal("done after 1 of 2 results")
	}
	rt.deliver(okResult(corr, 1)) // duplicate seq
	rt.deliver(okResult(corr, 2)) // out of range
	rt.deliver(okResult(corr, 0))
	if !isDone(w) {
		t.Fatal("not done after 2 of 2 results")
	}
	if w.results[0].status != 200 || w.results[1].status != 422 || w.results[1].errs[0].Field != "bid" {
		t.Errorf("results %+v", w.results)
	}
	if got := dropped(set); got != 2 {
		t.Errorf("dropped %d, want 2 (duplicate and out of range)", got)
	}
	rt.release(corr)
	if len(rt.free) != 2 {
		t.Errorf("%d slots free after release", len(rt.free))
	}
}

// TestReplyTableStaleGeneration reuses a slot after release: results for
// the old generation are dropped, results for the new one delivered.
func TestReplyTableStaleGeneration(t *testing.T) {
	rt, set := newTestReplyTable(1)
	old, _, err := rt.acquire(1)
	if err != nil {
		t.Fatal(err)
	}
	rt.release(old) // timed out
	corr, w, err := rt.acquire(1)
	if err != nil {
		t.Fatal(err)
	}
	if uint32(corr) != uint32(old) || corr == old {
		t.Fatalf("corr %x after %x: want the same slot, another generation", corr, old)
	}
	rt.deliver(okResult(old, 0))
	if isDone(w) || w.got != 0 || dropped(set) != 1 {
		t.Fatalf("stale result delivered: got %d, dropped %d", w.got, dropped(set))
	}
	rt.deliver(okResult(corr, 0))
	if !isDone(w) || dropped(set) != 1 {
		t.Fatalf("current result not delivered")
	}
	rt.release(corr)
	// A release drains the done signal, so the next user starts clean.
	next, w2, _ := rt.acquire(1)
	if isDone(w2) {
		t.Fatal("slot reused with a pending done signal")
	}
	rt.release(next)
}

func TestReplyTableBadCorrelations(t *testing.T) {
	rt, set := newTestReplyTable(4)
	for _, corr := range []uint64{0, 5, 1 << 32, math.MaxUint64, 1<<32 | 1} {
		rt.deliver(okResult(corr, 0))
	}
	if got := dropped(set); got != 5 {
		t.Errorf("dropped %d of 5 results nobody waits for", got)
	}
}

func TestReplyTableFull(t *testing.T) {
	rt, _ := newTestReplyTable(2)
	a, _, _ := rt.acquire(1)
	b, _, _ := rt.acquire(1)
	if _, _, err := rt.acquire(1); !errors.Is(err, ErrTooManyWaiting) {
		t.Fatalf("third acquire of two slots: %v", err)
	}
	rt.release(a)
	c, _, err := rt.acquire(1)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	rt.release(b)
	rt.release(c)
}

// TestReplyTableConcurrent runs waiters and one dispatcher at once, as the
// gateway does (run with -race): some waiters give up before their results
// arrive; every slot is free at the end and no stale result is delivered.
func TestReplyTableConcurrent(t *testing.T) {
	rt, set := newTestReplyTable(8)
	type job struct {
		corr uint64
		n    int
	}
	jobs := make(chan job, 64)
	var dispatcher sync.WaitGroup
	dispatcher.Add(1)
	go func() { // the inbox subscription's goroutine
		defer dispatcher.Done()
		for j := range jobs {
			for seq := 0; seq < j.n; seq++ {
				rt.deliver(okResult(j.corr, uint32(seq)))
			}
		}
	}()
	const workers, per = 8, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	completed, gaveUp := 0, 0
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				n := 1 + i%3
				corr, w, err := rt.acquire(n)
				if err != nil {
					continue // all slots busy: the gateway answers 503
				}
				if i%4 == 0 {
					rt.release(corr) // timed out before the results came
					jobs <- job{corr, n}
					mu.Lock()
					gaveUp++
					mu.Unlock()
					continue
				}
				jobs <- job{corr, n}
				select {
				case <-w.done:
				case <-time.After(10 * time.Second):
					t.Error("results never arrived")
				}
				for k := range n {
					if w.results[k].status != http.StatusOK {
						t.Errorf("result %d missing", k)
					}
				}
				rt.release(corr)
				mu.Lock()
				completed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(jobs)
	dispatcher.Wait()
	if len(rt.free) != 8 {
		t.Errorf("%d of 8 slots free", len(rt.free))
	}
	if completed == 0 || gaveUp == 0 {
		t.Errorf("completed %d, gave up %d: the test did not exercise both", completed, gaveUp)
	}
	if dropped(set) == 0 {
		t.Error("no stale result dropped")
	}
}

// TestOnReplyMalformed feeds the inbox handler frames that are not reply
// frames: counted, never delivered, never a panic.
func TestOnReplyMalformed(t *testing.T) {
	rt, set := newTestReplyTable(2)
	corr, w, _ := rt.acquire(1)
	for _, data := range []string{"", "\xc0", "\x91\xa1x", "\x91\x80", "\xdd\x00\x00\x00\x05"} {
		rt.onReply(&nats.Msg{Data: []byte(data)})
	}
	if got := set.GetOrCreateCounter(`sluice_gateway_reply_decode_errors_total`).Get(); got != 5 {
		t.Errorf("decode errors %d, want 5", got)
	}
	// Results the contract does not allow: no status, 200 without the
	// event, another status. Counted, and they do not end the wait.
	bad := schemas.AppendArrayHeader(nil, 3)
	bad = append(bad, "\x82\xa4corr"...)
	bad = schemas.AppendUint(bad, corr)
	bad = append(bad, "\xa3seq\x00"...)
	bad = append(bad, "\x83\xa4corr"...)
	bad = schemas.AppendUint(bad, corr)
	bad = append(bad, "\xa3seq\x00\xa6status\xcc\xc8"...)
	bad = append(bad, "\x83\xa4corr"...)
	bad = schemas.AppendUint(bad, corr)
	bad = append(bad, "\xa3seq\x00\xa6status\xcd\x01\xf4"...)
	rt.onReply(&nats.Msg{Data: bad})
	if got := set.GetOrCreateCounter(`sluice_gateway_reply_decode_errors_total`).Get(); got != 8 || isDone(w) {
		t.Errorf("decode errors %d, want 8; done %v", got, isDone(w))
	}
	good := schemas.AppendArrayHeader32(nil, 0)
	good = schemas.AppendResultInvalid(good, corr, 0, []schemas.FieldError{{Field: "symbol", Code: schemas.CodeMissingField, Detail: "d"}})
	schemas.PatchArrayHeader32(good, 1)
	rt.onReply(&nats.Msg{Data: good})
	if !isDone(w) || w.results[0].status != 422 || w.results[0].errs[0].Code != schemas.CodeMissingField {
		t.Errorf("result %+v", w.results[0])
	}
	rt.release(corr)
}

// TestNoResponders publishes a waiting batch with nobody in the workers'
// queue group: the NATS server's no-responders notice must not count as a
// malformed reply, and the request gets 504.
func TestNoResponders(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "h1", nil, func(o *Options) { o.RequestTimeout = 200 * time.Millisecond })
	resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"), "Prefer", "return=representation")
	wantProblem(t, resp, body, http.StatusGatewayTimeout)
	checkFor(t, func() error { return wantCount(e.counter(`sluice_gateway_no_responders_total`), 1) })
	if got := e.counter(`sluice_gateway_reply_decode_errors_total`); got != 0 {
		t.Errorf("reply decode errors %d: a no-responders status is not a malformed reply", got)
	}
}

func TestIDs(t *testing.T) {
	g := newIDGen()
	id := func(seq uint64) string { return string(g.appendID(nil, seq)) }
	if a, b := id(0), id(1); a == b || len(a) != 13 || !strings.HasPrefix(b, string(g.prefix[:])) {
		t.Errorf("ids %q %q", a, b)
	}
	if l := len(id(math.MaxUint64)); l > maxIDLen {
		t.Errorf("id of MaxUint64 has %d bytes, max %d", l, maxIDLen)
	}
	if newIDGen().prefix == g.prefix {
		t.Error("two generators share a prefix")
	}
	first := g.reserve(3)
	if next := g.reserve(1); next != first+3 {
		t.Errorf("reserve: %d after %d+3", next, first)
	}
}
