package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/bus"
)

// TestApplyPartitions: a partitioned ingest stream holds
// <prefix>.ingest.<type>.* and records its count; an unpartitioned one
// is upgraded in place (the partition subjects added, the old ones kept
// until an exact apply); another count is refused naming both counts,
// unless exact.
func TestApplyPartitions(t *testing.T) {
	durable := bus.AllModes(bus.ModeDurable)
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{Delivery: durable})
	got := e.apply(t, bus.StreamOptions{Delivery: durable, Partitions: 8})
	if got[0].Action != bus.Updated || !slices.Equal(got[0].Changed, []string{"subjects", "partitions"}) ||
		!slices.Equal(got[0].Added, []string{"t1.ingest.quote.*", "t1.ingest.trade.*"}) {
		t.Fatalf("upgrade to 8 partitions = %+v", got[0])
	}
	in := e.streamInfo(t, "t1-ingest").Config
	if !slices.Equal(in.Subjects, []string{"t1.ingest.quote", "t1.ingest.trade", "t1.ingest.quote.*", "t1.ingest.trade.*"}) ||
		bus.StreamPartitions(in) != 8 {
		t.Fatalf("upgraded ingest: subjects %v, partitions %d", in.Subjects, bus.StreamPartitions(in))
	}
	if got := e.apply(t, bus.StreamOptions{Delivery: durable, Partitions: 8}); got[0].Action != bus.Unchanged {
		t.Fatalf("second apply with 8 = %+v, want unchanged", got[0])
	}
	for _, p := range []int{0, 1, 4} {
		_, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{Delivery: durable, Partitions: p})
		var fe *bus.FieldError
		if !errors.As(err, &fe) || fe.Field != "partitions" || fe.Have != "8" || !errors.Is(err, bus.ErrIncompatibleStream) ||
			!strings.Contains(err.Error(), "--partitions 8") {
			t.Fatalf("apply with %d partitions on a stream of 8: %v, want a partitions field error naming 8", p, err)
		}
	}
	if _, err := e.js.Publish(context.Background(), e.subj.IngestPartition(1, 3), []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{Delivery: durable, Partitions: 4, Exact: true})
	if !strings.Contains(fmt.Sprint(err), "holds 1 batches") {
		t.Fatalf("exact apply with 4 on a stream holding a batch: %v, want refused", err)
	}
	if st, err := e.js.Stream(context.Background(), "t1-ingest"); err != nil || st.Purge(context.Background()) != nil {
		t.Fatalf("purging the ingest stream: %v", err)
	}
	got = e.apply(t, bus.StreamOptions{Delivery: durable, Partitions: 4, Exact: true})
	if !slices.Equal(got[0].Removed, []string{"t1.ingest.quote", "t1.ingest.trade"}) || !slices.Contains(got[0].Changed, "partitions") {
		t.Fatalf("exact apply with 4 = %+v", got[0])
	}
	if in := e.streamInfo(t, "t1-ingest").Config; bus.StreamPartitions(in) != 4 ||
		!slices.Equal(in.Subjects, []string{"t1.ingest.quote.*", "t1.ingest.trade.*"}) {
		t.Fatalf("after the exact apply: subjects %v, partitions %d", in.Subjects, bus.StreamPartitions(in))
	}
	if _, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{Delivery: durable, Partitions: bus.MaxPartitions + 1}); err == nil {
		t.Fatal("apply with too many partitions passed")
	}
}

// TestPartitionsOneInFlight: with three members pulling every partition,
// a partition's batches are delivered one at a time (the next only after
// the previous is acked), in stream order, and spread over the members.
func TestPartitionsOneInFlight(t *testing.T) {
	e := newEnv(t)
	const parts, perPart = 4, 30
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), Partitions: parts})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	inFlight := make(map[string]int)
	next := make(map[string]int)
	members := make(map[string]map[int]bool)
	var bad []string
	done := make(chan struct{})
	got := 0
	for m := range 3 {
		ps, err := bus.NewPartitions(ctx, e.js, "t1-ingest", bus.ConsumerOptions{Group: "g", Subjects: []string{e.subj.Ingest(1)}, Buffer: 4}, parts)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := ps.Consume(func(d bus.Delivery) {
			subj := d.Subject()
			mu.Lock()
			inFlight[subj]++
			if inFlight[subj] > 1 {
				bad = append(bad, subj+": two batches in flight")
			}
			if want := string(rune('0' + next[subj]%10)); string(d.Data()) != want {
				bad = append(bad, subj+": got "+string(d.Data())+", want "+want)
			}
			next[subj]++
			if members[subj] == nil {
				members[subj] = make(map[int]bool)
			}
			members[subj][m] = true
			mu.Unlock()
			go func() {
				time.Sleep(time.Millisecond) // a batch takes a while: others may pull meanwhile
				mu.Lock()
				inFlight[subj]--
				got++
				if got == parts*perPart {
					close(done)
				}
				mu.Unlock()
				_ = d.Ack()
			}()
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Stop)
	}
	for i := range perPart {
		for p := range parts {
			if _, err := e.js.Publish(ctx, e.subj.IngestPartition(1, p), []byte{byte('0' + i%10)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("%d of %d batches acked", got, parts*perPart)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d violations, first %v", len(bad), bad[:min(5, len(bad))])
	}
	spread := 0
	for _, ms := range members {
		spread = max(spread, len(ms))
	}
	if spread < 2 {
		t.Errorf("every partition went to one member only: %v", members)
	}
	pe, err := bus.Pulls{}.Pending(ctx)
	if err != nil || pe.Msgs != 0 {
		t.Errorf("pending of no consumer: %+v %v", pe, err)
	}
}

// TestApplyPartitionsExactKeepsUndrained: an exact apply that would remove
// the unpartitioned ingest subjects of an upgraded stream while batches
// wait on them is refused naming the partitions and the subject (the
// workers drain those subjects only while the stream holds them: removed,
// the batches would stay unread); with them drained it removes them,
// whatever the partitions hold.
func TestApplyPartitionsExactKeepsUndrained(t *testing.T) {
	durable := bus.AllModes(bus.ModeDurable)
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{Delivery: durable})
	ctx := context.Background()
	if _, err := e.js.Publish(ctx, e.subj.Ingest(1), []byte("before the upgrade")); err != nil {
		t.Fatal(err)
	}
	for _, o := range []bus.StreamOptions{
		{Delivery: durable, Partitions: 4, Exact: true}, // straight from one partition
		{Delivery: durable, Partitions: 4},              // upgraded in place first...
		{Delivery: durable, Partitions: 4, Exact: true}, // ...then exact
	} {
		_, err := bus.Apply(ctx, e.js, e.subj, o)
		if !o.Exact {
			if err != nil {
				t.Fatalf("in-place upgrade: %v", err)
			}
			continue
		}
		var fe *bus.FieldError
		if !errors.As(err, &fe) || fe.Field != "partitions" || !strings.Contains(err.Error(), e.subj.Ingest(1)) {
			t.Fatalf("exact apply with a batch on %s: %v, want a partitions field error naming it", e.subj.Ingest(1), err)
		}
		if in := e.streamInfo(t, "t1-ingest").Config; !slices.Contains(in.Subjects, e.subj.Ingest(1)) {
			t.Fatalf("refused, yet the stream's subjects are now %v", in.Subjects)
		}
	}
	// Drained (the worker's consumer took it); the partitions hold a batch.
	if st, err := e.js.Stream(ctx, "t1-ingest"); err != nil || st.Purge(ctx) != nil {
		t.Fatalf("purging the ingest stream: %v", err)
	}
	if _, err := e.js.Publish(ctx, e.subj.IngestPartition(1, 2), []byte("partitioned")); err != nil {
		t.Fatal(err)
	}
	got := e.apply(t, bus.StreamOptions{Delivery: durable, Partitions: 4, Exact: true})
	if !slices.Contains(got[0].Removed, e.subj.Ingest(1)) {
		t.Fatalf("exact apply once drained = %+v, want %s removed", got[0], e.subj.Ingest(1))
	}
}
