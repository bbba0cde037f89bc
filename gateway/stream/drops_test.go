package stream

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// TestNATSDropsShowAsGap: messages the hub's NATS client drops (its
// backlog for a feed full) make every symbol's sequence skip, so that a
// subscriber sees a gap rather than a sequence that hides the loss.
func TestNATSDropsShowAsGap(t *testing.T) {
	_, url := opstest.RunNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pub, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	subjects := schemas.MustSubjects("d")
	h, err := NewHub(Options{Conn: nc, Subjects: subjects, backlog: 1, dropCheckEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := h.feeds[schemas.KindQuote]
	q := newQueue(true, 256)
	req := &request{kind: schemas.KindQuote, symbols: []string{"D"}}
	if err := f.register(q, req); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	publish := func(i int) {
		t.Helper()
		if err := pub.Publish(subjects.Enriched(schemas.KindQuote, "D"), benchQuoteID("D", i)); err != nil {
			t.Fatal(err)
		}
	}
	var got []item
	waitFor := func(seq uint64) {
		t.Helper()
		opstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			got, _ = q.take(got, 1000)
			if len(got) > 0 && got[len(got)-1].seq >= seq {
				return nil
			}
			return fmt.Errorf("no event with sluiceseq %d yet: %d items", seq, len(got))
		})
	}
	publish(1)
	waitFor(1)
	f.mu.Lock() // the feed stalls: the client's backlog of one fills, the rest is dropped
	for i := 2; i <= 50; i++ {
		publish(i)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // every message above has reached the hub's client
		t.Fatal(err)
	}
	f.mu.Unlock()
	opstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if h.m.dropped.Get() == 0 {
			return fmt.Errorf("no drop counted yet")
		}
		return nil
	})
	publish(51)
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		got, _ = q.take(got, 1000)
		for _, it := range got {
			if it.ev != nil && it.ev.id() == "D-51" {
				return nil
			}
		}
		return fmt.Errorf("no D-51 yet")
	})
	accounted := uint64(0)
	for _, it := range got[1:] {
		accounted += 1 + uint64(it.replaced)
	}
	last := got[len(got)-1]
	if last.seq <= 1+accounted {
		t.Fatalf("last sluiceseq %d, %d events accounted after the first: the drop of %d messages is not visible", last.seq, accounted, h.m.dropped.Get())
	}
	t.Logf("%d messages dropped; sluiceseq went from 1 to %d over %d events", h.m.dropped.Get(), last.seq, accounted)
}

func benchQuoteID(sym string, i int) []byte {
	ev := schemas.Enriched{ID: fmt.Sprintf("%s-%d", sym, i), Source: "/test", Type: schemas.TypeQuoteEnrichedV1,
		Subject: sym, Kind: schemas.KindQuote}
	ev.Quote.Quote = schemas.Quote{Symbol: sym, Bid: float64(i), Ask: float64(i + 1), Present: schemas.FSymbol | schemas.FBid | schemas.FAsk}
	return ev.AppendMsgpack(nil)
}

// id reads the event's CloudEvents id (tests only).
func (e *event) id() string {
	r := schemas.NewReader(e.data)
	n := r.MapHeader()
	for i := 0; i < n && !r.Done(); i++ {
		if k := r.String(); k == "id" {
			return r.String()
		}
		r.Skip()
	}
	return ""
}
