package gateway

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// FuzzReplyFrame feeds arbitrary reply frames to the inbox handler, as a
// misbehaving worker could: never a panic, and a waiter is signalled only
// when each of its results arrived.
func FuzzReplyFrame(f *testing.F) {
	en := enrichForTest(&schemas.Event{ID: "x", Kind: schemas.KindQuote, Quote: aapl}, tsNanos)
	for _, corr := range []uint64{1, 2, 1<<32 | 1, 0} {
		b := schemas.AppendArrayHeader32(nil, 2)
		b = schemas.AppendResultOK(b, corr, 0, &en)
		b = schemas.AppendResultInvalid(b, corr, 1, []schemas.FieldError{{Field: "bid", Code: "crossed_quote", Detail: "d"}})
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("\x91\x80"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		// A table per input: a shared one would give the waiters a new
		// generation each time, which no input names, and every result
		// would be dropped as stale before reaching the check below.
		rt, _ := newTestReplyTable(2)
		c1, w1, _ := rt.acquire(2)
		c2, w2, _ := rt.acquire(1)
		if c1 != 1 || c2 != 2 {
			t.Fatalf("correlation ids %#x, %#x: the seeds name 1 and 2", c1, c2)
		}
		rt.onReply(&nats.Msg{Data: frame})
		for _, w := range []*waiter{w1, w2} {
			if isDone(w) {
				for i, r := range w.results {
					if r.status == 0 {
						t.Fatalf("done with result %d missing", i)
					}
				}
			}
		}
		rt.release(c1)
		rt.release(c2)
	})
}
