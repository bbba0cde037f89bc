package composetest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// Subjects of the default prefix, as a NATS user of the stack sees them.
const (
	// The quote ingest subject of core delivery, and its partition
	// subjects of durable delivery (the default, with --partitions 4).
	ingestQuotes            = "sluice.ingest.quote"
	ingestQuotesPartitioned = "sluice.ingest.quote.*"
	enrichedQuotes          = "sluice.enriched.quote.>"
)

// tap watches the pipeline from the NATS side, through ports published on
// 127.0.0.1: every batch frame the gateways publish on the quote ingest
// subject (a plain subscription sees them all, beside the workers' queue
// group) and every enriched quote. Both are decoded with a generic
// MessagePack library, as any subscriber in any language would: a batch is
// an array of CloudEvent maps, an enriched event one map; the test needs
// only their "id".
type tap struct {
	nc *nats.Conn

	mu       sync.Mutex
	enriched map[string]int       // id → times enriched
	arrived  map[string]time.Time // id → first enriched arrival
	arrivals []time.Time          // every enriched arrival, in order
	batchOf  map[string]int       // id → index in batches
	batches  []batch
	bad      []string // undecodable messages
	subs     []*nats.Subscription
}

// batch is one ingest frame seen by the tap.
type batch struct {
	at  time.Time
	ids []string
}

// eventID is the one CloudEvents attribute the tap reads.
type eventID struct {
	ID string `msgpack:"id"`
}

// newTap connects to the given NATS nodes of s only (it ignores the servers
// the cluster would advertise), as the operator, and subscribes. It is
// closed by t.Cleanup.
func newTap(t *testing.T, s *stack, idx ...int) *tap {
	t.Helper()
	tp := &tap{enriched: map[string]int{}, arrived: map[string]time.Time{}, batchOf: map[string]int{}}
	urls := s.natsURLs(idx...)
	nc, err := nats.Connect(urls, append(s.natsOptions(t, "operator"), nats.Name("sluice-composetest"), nats.DontRandomize(), nats.IgnoreDiscoveredServers(),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(5*time.Second))...)
	if err != nil {
		t.Fatalf("connecting the tap to %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	tp.nc = nc
	for subj, cb := range map[string]nats.MsgHandler{ingestQuotes: tp.onBatch, ingestQuotesPartitioned: tp.onBatch, enrichedQuotes: tp.onEnriched} {
		sub, err := nc.Subscribe(subj, cb)
		if err != nil {
			t.Fatalf("subscribing to %s: %v", subj, err)
		}
		// Count every message: no slow-consumer drops in the tap.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			t.Fatal(err)
		}
		tp.subs = append(tp.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("tap: %v", err)
	}
	return tp
}

func (tp *tap) onBatch(m *nats.Msg) {
	now := time.Now()
	var evs []eventID
	err := msgpack.Unmarshal(m.Data, &evs)
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if err != nil {
		tp.bad = append(tp.bad, fmt.Sprintf("batch on %s: %v", m.Subject, err))
		return
	}
	b := batch{at: now, ids: make([]string, len(evs))}
	for i, ev := range evs {
		b.ids[i] = ev.ID
		tp.batchOf[ev.ID] = len(tp.batches)
	}
	tp.batches = append(tp.batches, b)
}

func (tp *tap) onEnriched(m *nats.Msg) {
	now := time.Now()
	var ev eventID
	err := msgpack.Unmarshal(m.Data, &ev)
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if err != nil || ev.ID == "" {
		tp.bad = append(tp.bad, fmt.Sprintf("enriched event on %s: %v", m.Subject, err))
		return
	}
	tp.enriched[ev.ID]++
	if _, ok := tp.arrived[ev.ID]; !ok {
		tp.arrived[ev.ID] = now
	}
	tp.arrivals = append(tp.arrivals, now)
}

// check reports undecodable messages and drops.
func (tp *tap) check() error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.bad) > 0 {
		return fmt.Errorf("%d undecodable messages, first: %s", len(tp.bad), tp.bad[0])
	}
	for _, s := range tp.subs {
		if n, _ := s.Dropped(); n > 0 {
			return fmt.Errorf("tap dropped %d messages on %s", n, s.Subject)
		}
	}
	return nil
}

// prime waits until the tap's interest has reached every node: it sends one
// quote through each gateway until the tap has seen a batch and an enriched
// event of each (a subscription reaches the other nodes of the cluster
// asynchronously, after Flush returns).
func (tp *tap) prime(t *testing.T, c *http.Client, gateways []string) {
	t.Helper()
	for i, gw := range gateways {
		opstest.CheckFor(t, 20*time.Second, 300*time.Millisecond, func() error {
			r, err := postQuotes(context.Background(), c, gw, quotesJSON(i, 1), false)
			if err != nil || r.status != http.StatusAccepted {
				return fmt.Errorf("probe through %s: %v status %d %s", gw, err, r.status, r.body)
			}
			ids, err := acceptedIDs(r.body)
			if err != nil {
				return err
			}
			if !eventually(300*time.Millisecond, 10*time.Millisecond, func() bool {
				return tp.seenBatch(ids[0]) && tp.count(ids[0]) > 0
			}) {
				return fmt.Errorf("the tap has not seen probe %s through %s", ids[0], gw)
			}
			return nil
		})
	}
}

func (tp *tap) seenBatch(id string) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	_, ok := tp.batchOf[id]
	return ok
}

// count returns how many times id was enriched.
func (tp *tap) count(id string) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.enriched[id]
}

// missing returns the ids of sent that were not enriched (yet).
func (tp *tap) missing(sent map[string]time.Time) []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var miss []string
	for id := range sent {
		if tp.enriched[id] == 0 {
			miss = append(miss, id)
		}
	}
	sort.Slice(miss, func(i, j int) bool { return sent[miss[i]].Before(sent[miss[j]]) })
	return miss
}

// duplicates returns the ids of sent enriched more than once, and the
// ids the gateways published in more than one batch.
func (tp *tap) duplicates(sent map[string]time.Time) (enriched, published []string) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	inBatches := map[string]int{}
	for _, b := range tp.batches {
		for _, id := range b.ids {
			inBatches[id]++
		}
	}
	for id := range sent {
		if tp.enriched[id] > 1 {
			enriched = append(enriched, id)
		}
		if inBatches[id] > 1 {
			published = append(published, id)
		}
	}
	return enriched, published
}

// waitSettled waits until every id of sent is enriched, or until no
// enriched event arrived for quiet (what is missing then is lost: core NATS
// does not redeliver), or total has passed.
func (tp *tap) waitSettled(sent map[string]time.Time, quiet, total time.Duration) {
	eventually(total, 50*time.Millisecond, func() bool {
		if len(tp.missing(sent)) == 0 {
			return true
		}
		tp.mu.Lock()
		defer tp.mu.Unlock()
		n := len(tp.arrivals)
		return n == 0 || time.Since(tp.arrivals[n-1]) > quiet
	})
}

// lostBatches groups ids by the batch frame that carried them: for each
// batch holding any of ids, how many of its events are in ids, how many it
// held, and when the tap saw it. ids the tap saw in no batch are counted
// under index -1.
func (tp *tap) lostBatches(ids []string) (map[int]int, map[int]batch) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	lost := map[int]int{}
	frames := map[int]batch{}
	for _, id := range ids {
		i, ok := tp.batchOf[id]
		if !ok {
			lost[-1]++
			continue
		}
		lost[i]++
		frames[i] = tp.batches[i]
	}
	return lost, frames
}

// maxGap returns the longest time between consecutive enriched arrivals
// within [from, to], counting from `from` to the first arrival and from the
// last arrival to `to`, and when it began.
func (tp *tap) maxGap(from, to time.Time) (time.Duration, time.Time) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	prev, gap, began := from, time.Duration(0), from
	for _, at := range tp.arrivals {
		if at.Before(from) || at.After(to) {
			continue
		}
		if d := at.Sub(prev); d > gap {
			gap, began = d, prev
		}
		prev = at
	}
	if d := to.Sub(prev); d > gap {
		gap, began = d, prev
	}
	return gap, began
}

// firstArrivalSentAfter returns when the first event sent at or after t0
// was enriched, or false.
func (tp *tap) firstArrivalSentAfter(sent map[string]time.Time, t0 time.Time) (time.Time, bool) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var first time.Time
	for id, at := range sent {
		if at.Before(t0) {
			continue
		}
		if arr, ok := tp.arrived[id]; ok && (first.IsZero() || arr.Before(first)) {
			first = arr
		}
	}
	return first, !first.IsZero()
}
