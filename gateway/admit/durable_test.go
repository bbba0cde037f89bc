package admit

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// TestDurableGroupDepth: a durable group's depth is the consumer backlog
// of the freshest report, in batches times the mean stored batch, plus
// what this gateway stored since, sent and not acked, and holds; the
// backlog and the peak rate outlive the workers.
func TestDurableGroupDepth(t *testing.T) {
	var unacked int64
	g := NewGroup("trades", ShedOptions{MaxQueueDelay: time.Second})
	g.SetDurable()
	g.AddOrigin("inbox.trade", func() int64 { return unacked })
	now := time.Now()
	g.Stored(100)
	g.Stored(50) // mean 75 events per batch
	g.Observe(&schemas.LoadReport{Worker: "w1", Group: "trades", IntervalMS: 100, MaxRate: 1000,
		PendingEvents: 999, ConsumerPending: 3, ConsumerAckPending: 1}, now)
	if got, want := g.Depth(), int64(4*75); got != want {
		t.Fatalf("depth %d, want %d (the consumer's 4 batches of 75; workers' own pending not added)", got, want)
	}
	g.Stored(75)
	unacked = 10
	g.Local(5)
	if got, want := g.Depth(), int64(4*75+75+10+5); got != want {
		t.Fatalf("depth %d, want %d", got, want)
	}
	// A newer report holds this gateway's stored batches: the count since
	// the last report starts again.
	g.Observe(&schemas.LoadReport{Worker: "w2", Group: "trades", IntervalMS: 100, MaxRate: 1000, ConsumerPending: 2}, now)
	if got, want := g.Depth(), int64(2*75+10+5); got != want {
		t.Fatalf("depth %d, want %d", got, want)
	}
	bound := g.Bound()
	// The workers go silent: the group has none live, and keeps its
	// backlog and its bound (peak rate not decaying).
	for i := 1; i <= 100; i++ {
		g.Expire(now.Add(time.Duration(i) * 100 * time.Millisecond))
	}
	if g.Live() != 0 {
		t.Fatalf("live %d after the reports stopped", g.Live())
	}
	if g.Bound() != bound || g.Depth() != int64(2*75+10+5) {
		t.Fatalf("without workers: bound %d (was %d), depth %d", g.Bound(), bound, g.Depth())
	}
}

// TestCoreGroupIgnoresConsumerCounts: in core delivery the consumer
// counts of a report are not the depth.
func TestCoreGroupIgnoresConsumerCounts(t *testing.T) {
	g := NewGroup("quotes", ShedOptions{})
	g.Observe(&schemas.LoadReport{Worker: "w1", Group: "quotes", IntervalMS: 100, PendingEvents: 7, ConsumerPending: 1000}, time.Now())
	if g.Depth() != 7 {
		t.Fatalf("depth %d, want the worker's 7", g.Depth())
	}
}
