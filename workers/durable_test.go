package workers_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

// durableQuotes are the options of a quotes worker in durable delivery.
func durableQuotes(o workers.Options) workers.Options {
	o.Group = "quotes"
	o.Delivery = bus.AllModes(bus.ModeDurable)
	if o.NakDelay == 0 {
		o.NakDelay = 10 * time.Millisecond
	}
	return o
}

func jsOf(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// storeBatch publishes evs as one batch frame to the ingest stream, as a
// gateway in durable delivery does (the inbox in Sluice-Reply), and waits
// for the stream to store it.
func storeBatch(t testing.TB, js jetstream.JetStream, reply string, evs ...*schemas.Event) {
	t.Helper()
	m := &nats.Msg{Subject: subjects.Ingest(schemas.KindQuote), Data: frame(evs...), Header: nats.Header{
		schemas.HeaderFrame: {schemas.FrameBatchV1},
		schemas.HeaderCount: {strconv.Itoa(len(evs))},
	}}
	if reply != "" {
		m.Header.Set(schemas.HeaderReply, reply)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("storing a batch: %v", err)
	}
}

// streamMsgs returns every message stored in stream.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	st := s.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// streamCount returns how many messages stream holds.
func streamCount(t testing.TB, js jetstream.JetStream, stream string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return int(s.CachedInfo().State.Msgs)
}

// enrichedIDs counts the enriched events in the enriched stream by id.
func enrichedIDs(t testing.TB, js jetstream.JetStream) map[string]int {
	t.Helper()
	ids := make(map[string]int)
	for _, m := range streamMsgs(t, js, bus.EnrichedStream(subjects)) {
		ids[decodeEnriched(t, m.Data).ID]++
	}
	return ids
}

func counterValue(set *metrics.Set, name string) uint64 {
	return set.GetOrCreateCounter(name).Get()
}

// gateStage blocks every batch until release is closed, and counts the
// batches that reached it in entered.
type gateStage struct {
	entered atomic.Int64
	release chan struct{}
}

func (g *gateStage) Process(ctx context.Context, _ *workers.Batch) error {
	g.entered.Add(1)
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestDurableAckAfterStored: a durable batch's enriched events and dead
// letters are in their streams before its reply is sent and before it is
// acked (the work-queue stream removes it on the ack), and not before it
// is processed.
func TestDurableAckAfterStored(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	g := &gateStage{release: make(chan struct{})}
	set := metrics.NewSet()
	w := startWorker(t, url, durableQuotes(workers.Options{Stages: []workers.Stage{g}, Metrics: set}))
	reply, sub := inbox(t, nc)
	storeBatch(t, js, reply,
		quote("q1", "AAPL", 189.98, 190.02, 7, 0),
		quote("q2", "AAPL", 191, 190, 7, 1), // crossed: a dead letter
		quote("q3", "MSFT", 420, 420.5, 0, 0))
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if g.entered.Load() == 0 {
			return errors.New("the batch has not reached the stage")
		}
		return nil
	})
	if n := streamCount(t, js, bus.IngestStream(subjects)); n != 1 {
		t.Errorf("ingest stream holds %d batches while the batch runs, want 1 (not acked yet)", n)
	}
	if n := streamCount(t, js, bus.EnrichedStream(subjects)); n != 0 {
		t.Errorf("enriched stream holds %d events before the batch is processed", n)
	}
	close(g.release)
	res := waitReply(t, sub)
	// The reply is sent only once the events are stored.
	if n := streamCount(t, js, bus.EnrichedStream(subjects)); n != 2 {
		t.Errorf("enriched stream holds %d events when the reply came, want 2", n)
	}
	dl := streamMsgs(t, js, bus.DLQStream(subjects))
	if len(dl) != 1 || dl[0].Header.Get(schemas.HeaderReason) != schemas.CodeCrossedQuote ||
		dl[0].Header.Get(bus.HeaderMsgID) != "dlq test/gateway q2" {
		t.Errorf("dead letters %+v, want one crossed_quote with msg id %q", dl, "dlq test/gateway q2")
	}
	if len(res) != 2 {
		t.Errorf("reply of %d results, want 2", len(res))
	}
	for _, m := range streamMsgs(t, js, bus.EnrichedStream(subjects)) {
		e := decodeEnriched(t, m.Data)
		if want := "test/gateway " + e.ID; m.Header.Get(bus.HeaderMsgID) != want {
			t.Errorf("enriched %s has msg id %q, want %q", e.ID, m.Header.Get(bus.HeaderMsgID), want)
		}
	}
	if err := w.CheckStreams(context.Background()); err != nil {
		t.Errorf("CheckStreams = %v", err)
	}
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := streamCount(t, js, bus.IngestStream(subjects)); n != 0 {
			return fmt.Errorf("ingest stream holds %d batches: not acked", n)
		}
		if n := counterValue(set, `sluice_worker_acks_total{group="quotes"}`); n != 1 {
			return fmt.Errorf("%d acks counted", n)
		}
		return nil
	})
}

// TestDurableRedeliveryNoDuplicate: a batch whose dead letter the stream
// refuses (a maximum message size, a refusal a retry in place cannot mend)
// is nakked after its enriched event was stored; delivered again once the
// stream takes it, it stores the dead letter and its enriched event is not
// stored twice. A client's retry of the same events (same
// CloudEvents source and id, another batch) stores nothing new either.
func TestDurableRedeliveryNoDuplicate(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	set := metrics.NewSet()
	w := startWorker(t, url, durableQuotes(workers.Options{Metrics: set, NakDelay: 200 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := js.DeleteStream(ctx, bus.DLQStream(subjects)); err != nil {
		t.Fatal(err)
	}
	if err := w.CheckStreams(ctx); err == nil || !strings.Contains(err.Error(), bus.DLQStream(subjects)) {
		t.Errorf("CheckStreams without the dead-letter stream = %v", err)
	}
	if _, err := bus.Apply(ctx, js, subjects, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}); err != nil {
		t.Fatal(err)
	}
	dlq, err := js.Stream(ctx, bus.DLQStream(subjects))
	if err != nil {
		t.Fatal(err)
	}
	cfg := dlq.CachedInfo().Config
	small := cfg
	small.MaxMsgSize = 16
	if _, err := js.UpdateStream(ctx, small); err != nil {
		t.Fatal(err)
	}
	evs := []*schemas.Event{quote("q1", "AAPL", 189.98, 190.02, 0, 0), quote("q2", "AAPL", 191, 190, 0, 0)}
	storeBatch(t, js, "", evs...)
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := counterValue(set, `sluice_worker_naks_total{group="quotes"}`); n == 0 {
			return errors.New("the batch was not nakked")
		}
		return nil
	})
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := streamCount(t, js, bus.DLQStream(subjects)); n != 1 {
			return fmt.Errorf("%d dead letters stored", n)
		}
		if n := counterValue(set, `sluice_worker_acks_total{group="quotes"}`); n != 1 {
			return fmt.Errorf("%d acks", n)
		}
		return nil
	})
	storeBatch(t, js, "", evs...) // a client's retry: a new batch, the same events
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := counterValue(set, `sluice_worker_acks_total{group="quotes"}`); n != 2 {
			return fmt.Errorf("%d acks", n)
		}
		return nil
	})
	if ids := enrichedIDs(t, js); len(ids) != 1 || ids["q1"] != 1 {
		t.Errorf("enriched events by id %v, want q1 once", ids)
	}
	if n := streamCount(t, js, bus.DLQStream(subjects)); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
	if n := counterValue(set, `sluice_worker_redeliveries_total{group="quotes"}`); n == 0 {
		t.Error("no redelivery counted")
	}
	if n := counterValue(set, `sluice_worker_duplicates_total{group="quotes"}`); n < 2 {
		t.Errorf("%d duplicates counted, want at least 2 (the redelivery's and the retry's enriched event)", n)
	}
}

// TestDurablePoisonBatch: a batch that fails on every delivery reaches the
// dead-letter stream whole after MaxDeliver deliveries, with its reason and
// delivery count, and leaves the ingest stream.
func TestDurablePoisonBatch(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	set := metrics.NewSet()
	var calls atomic.Int64
	poison := workers.StageFunc(func(context.Context, *workers.Batch) error {
		calls.Add(1)
		return errors.New("downstream refuses everything")
	})
	startWorker(t, url, durableQuotes(workers.Options{Metrics: set, MaxDeliver: 3, Stages: []workers.Stage{poison}}))
	data := frame(quote("q1", "AAPL", 189.98, 190.02, 0, 0))
	storeBatch(t, js, "", quote("q1", "AAPL", 189.98, 190.02, 0, 0))
	var dl []*jetstream.RawStreamMsg
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if dl = streamMsgs(t, js, bus.DLQStream(subjects)); len(dl) != 1 {
			return fmt.Errorf("%d dead letters", len(dl))
		}
		return nil
	})
	h := dl[0].Header
	if h.Get(schemas.HeaderReason) != workers.ReasonStageFailed || h.Get(workers.HeaderDelivered) != "3" ||
		h.Get(schemas.HeaderFrame) != schemas.FrameBatchV1 || !strings.Contains(h.Get(workers.HeaderError), "downstream refuses") ||
		string(dl[0].Data) != string(data) || dl[0].Subject != subjects.DLQ(schemas.KindQuote) {
		t.Errorf("dead-lettered batch %s %v %q", dl[0].Subject, h, dl[0].Data)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("the stage ran %d times, want 3 (MaxDeliver)", n)
	}
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := streamCount(t, js, bus.IngestStream(subjects)); n != 0 {
			return fmt.Errorf("ingest stream holds %d batches after Term", n)
		}
		return nil
	})
	if n := counterValue(set, `sluice_worker_dead_lettered_batches_total{group="quotes",reason="stage_failed"}`); n != 1 {
		t.Errorf("%d dead-lettered batches counted", n)
	}
	if n := counterValue(set, `sluice_worker_naks_total{group="quotes"}`); n != 2 {
		t.Errorf("%d naks, want 2", n)
	}
}

// TestDurableWorkerKilledMidBatch: a worker whose connection closes while
// it holds a batch loses nothing: after AckWait another member of the
// group processes the batch.
func TestDurableWorkerKilledMidBatch(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	g := &gateStage{release: make(chan struct{})}
	ncA, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	a, err := workers.New(durableQuotes(workers.Options{Conn: ncA, Enricher: sampleEnricher(), Concurrency: 1,
		AckWait: time.Second, Stages: []workers.Stage{g}, Now: func() int64 { return testNow }}))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_ = a.Shutdown(ctx) // its connection is closed: errors expected
	})
	storeBatch(t, js, "", quote("q1", "AAPL", 189.98, 190.02, 0, 0), quote("q2", "MSFT", 420, 420.5, 0, 0))
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if g.entered.Load() == 0 {
			return errors.New("worker A has not taken the batch")
		}
		return nil
	})
	set := metrics.NewSet()
	startWorker(t, url, durableQuotes(workers.Options{AckWait: time.Second, Metrics: set}))
	ncA.Close() // killed before its ack
	close(g.release)
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := counterValue(set, `sluice_worker_acks_total{group="quotes"}`); n != 1 {
			return fmt.Errorf("worker B acked %d batches", n)
		}
		return nil
	})
	if ids := enrichedIDs(t, js); len(ids) != 2 || ids["q1"] != 1 || ids["q2"] != 1 {
		t.Errorf("enriched events by id %v, want q1 and q2 once", ids)
	}
	if n := counterValue(set, `sluice_worker_redeliveries_total{group="quotes"}`); n != 1 {
		t.Errorf("worker B counted %d redeliveries, want 1", n)
	}
}

// TestDurableLoadReport: load reports carry the consumer's backlog.
func TestDurableLoadReport(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	g := &gateStage{release: make(chan struct{})}
	defer close(g.release)
	reports := collect(t, nc, subjects.Load("quotes"))
	startWorker(t, url, durableQuotes(workers.Options{Concurrency: 1, Stages: []workers.Stage{g},
		ReportInterval: 20 * time.Millisecond}))
	for i := range 10 {
		storeBatch(t, js, "", quote("q"+strconv.Itoa(i), "AAPL", 189.98, 190.02, 0, 0))
	}
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		msgs := reports.Msgs()
		if len(msgs) == 0 {
			return errors.New("no report")
		}
		var lr schemas.LoadReport
		r := schemas.NewReader(msgs[len(msgs)-1].Data)
		if err := lr.DecodeMsgpack(&r); err != nil {
			return err
		}
		// Concurrency 1: one batch runs, the client pulls at most 2
		// ahead, the rest stay in the stream.
		if lr.ConsumerPending+lr.ConsumerAckPending != 10 || lr.ConsumerPending < 6 || lr.ConsumerAckPending < 1 {
			return fmt.Errorf("consumer pending %d, ack pending %d; want 10 in all, at most 4 ack pending", lr.ConsumerPending, lr.ConsumerAckPending)
		}
		return nil
	})
}

// TestDurableIncompatibleStream: a worker does not start on an ingest
// stream that exists with another retention, and says which field.
func TestDurableIncompatibleStream(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: bus.IngestStream(subjects),
		Subjects: []string{"sluice.ingest.>"}, Retention: jetstream.LimitsPolicy}); err != nil {
		t.Fatal(err)
	}
	w, err := workers.New(durableQuotes(workers.Options{Conn: nc, Enricher: sampleEnricher()}))
	if err != nil {
		t.Fatal(err)
	}
	err = w.Start()
	if !errors.Is(err, bus.ErrIncompatibleStream) || !strings.Contains(err.Error(), "retention") {
		t.Errorf("Start = %v, want an incompatible stream naming retention", err)
	}
	if err := w.Shutdown(ctx); err == nil {
		t.Error("Shutdown after a failed Start returned nil")
	}
}

// TestDurableUndecodableFrame: a batch frame that cannot be read is
// dead-lettered whole at once (no retry mends it), not acked and lost.
func TestDurableUndecodableFrame(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	set := metrics.NewSet()
	startWorker(t, url, durableQuotes(workers.Options{Metrics: set}))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := js.Publish(ctx, subjects.Ingest(schemas.KindQuote), []byte("not a frame")); err != nil {
		t.Fatal(err)
	}
	var dl []*jetstream.RawStreamMsg
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if dl = streamMsgs(t, js, bus.DLQStream(subjects)); len(dl) != 1 {
			return fmt.Errorf("%d dead letters", len(dl))
		}
		return nil
	})
	if h := dl[0].Header; h.Get(schemas.HeaderReason) != workers.ReasonUndecodable || h.Get(workers.HeaderDelivered) != "1" ||
		string(dl[0].Data) != "not a frame" {
		t.Errorf("dead-lettered frame %v %q", h, dl[0].Data)
	}
	// The worker counts a dead letter once its store is acknowledged, a
	// moment after the stream shows it.
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := counterValue(set, `sluice_worker_dead_lettered_batches_total{group="quotes",reason="undecodable"}`); n != 1 {
			return fmt.Errorf("%d undecodable batches counted", n)
		}
		return nil
	})
}

// TestDurableSlowBatchInProgress: a batch that runs longer than AckWait is
// kept with in-progress acks, not delivered again.
func TestDurableSlowBatchInProgress(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	set := metrics.NewSet()
	slow := workers.StageFunc(func(ctx context.Context, _ *workers.Batch) error {
		select {
		case <-time.After(2500 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	startWorker(t, url, durableQuotes(workers.Options{Metrics: set, Concurrency: 1, AckWait: time.Second,
		Stages: []workers.Stage{slow}}))
	storeBatch(t, js, "", quote("q1", "AAPL", 189.98, 190.02, 0, 0))
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := counterValue(set, `sluice_worker_acks_total{group="quotes"}`); n == 0 {
			return errors.New("not acked yet")
		}
		return nil
	})
	// Without in-progress acks the stream would have delivered the batch
	// again after 1 s; the copy would reach the worker as soon as the
	// first run freed its slot.
	time.Sleep(500 * time.Millisecond)
	if n := counterValue(set, `sluice_worker_redeliveries_total{group="quotes"}`); n != 0 {
		t.Errorf("%d redeliveries of a batch kept in progress", n)
	}
	if n := counterValue(set, `sluice_worker_in_progress_total{group="quotes"}`); n < 2 {
		t.Errorf("%d in-progress acks over 2.5 s with AckWait 1 s, want at least 2", n)
	}
	if ids := enrichedIDs(t, js); ids["q1"] != 1 {
		t.Errorf("enriched %v", ids)
	}
}
