package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// TestDurableWorkerDiesHoldingBatch: sluice dev in durable delivery; the
// quotes worker's connection closes while it holds a 202'd batch (before
// its ack). Nothing is lost: another worker of the group, started after,
// gets the batch once the ack wait has passed, and the enriched stream
// holds each event once.
func TestDurableWorkerDiesHoldingBatch(t *testing.T) {
	st := stackWith(t, func(c *devConfig) {
		c.gateway.opts.Delivery = bus.AllModes(bus.ModeDurable)
		c.worker.ackWait = time.Second
		c.worker.stageDelay = 50 * time.Millisecond // a batch of 5 runs 250 ms
	})
	c := clients()["h2c"]
	resp, body := post(t, c, "http://"+st.gw.Addr()+"/v1/events/quote", "application/x-ndjson", ndjsonQuotes(5), "Idempotency-Key", "k")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	url := st.nats.ClientURL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subjects := schemas.MustSubjects("")
	cons, err := js.Consumer(ctx, bus.IngestStream(subjects), "quotes")
	if err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 1 {
			return fmt.Errorf("ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		}
		return nil
	})
	st.conns[0].Close() // the quotes worker's: killed before its ack
	st.workers = st.workers[1:]

	wnc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer wnc.Close()
	wf := workerFlags{delivery: bus.AllModes(bus.ModeDurable), ackWait: time.Second}
	wk, watcher, err := startWorker(ctx, wnc, subjects, "quotes", &wf, slog.New(slog.DiscardHandler), metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watcher.Stop() }()
	defer func() {
		if err := wk.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	stream, err := js.Stream(ctx, bus.EnrichedStream(subjects))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	opstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending+int(info.NumPending) != 0 {
			return fmt.Errorf("batch not acked yet: ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		}
		return nil
	})
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var en schemas.Enriched
		r := schemas.NewReader(m.Data)
		if err := en.DecodeMsgpack(&r); err != nil {
			t.Fatal(err)
		}
		ids[en.ID]++
	}
	for i := range 5 {
		if id := fmt.Sprintf("k-%d", i); ids[id] != 1 {
			t.Errorf("enriched %s %d times, want once (all: %v)", id, ids[id], ids)
		}
	}
	if len(ids) != 5 {
		t.Errorf("enriched events %v, want k-0..k-4", ids)
	}
}

// TestDurableWorkerReadiness: in durable delivery /readyz has a line per
// worker group for its streams, failing when one is gone.
func TestDurableWorkerReadiness(t *testing.T) {
	st := stackWith(t, func(c *devConfig) { c.gateway.opts.Delivery = bus.AllModes(bus.ModeDurable) })
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + st.ops.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := readyz(); code != http.StatusOK || !strings.Contains(body, "streams:quotes: ok") || !strings.Contains(body, "streams:trades: ok") {
		t.Fatalf("/readyz %d:\n%s", code, body)
	}
	nc, err := nats.Connect(st.nats.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(context.Background(), bus.DLQStream(schemas.MustSubjects(""))); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, `streams:quotes: stream "sluice-dlq"`) {
		t.Fatalf("/readyz without the dead-letter stream %d:\n%s", code, body)
	}
}

// durableTwoDeliveries starts sluice dev in durable delivery with
// --max-deliver 2 and returns it, a JetStream client of its server and the
// enriched stream's configuration.
func durableTwoDeliveries(t *testing.T) (*devStack, jetstream.JetStream, jetstream.StreamConfig) {
	t.Helper()
	st := stackWith(t, func(c *devConfig) {
		c.gateway.opts.Delivery = bus.AllModes(bus.ModeDurable)
		c.worker.maxDeliver = 2
	})
	nc, err := nats.Connect(st.nats.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	enriched, err := js.Stream(ctx, bus.EnrichedStream(schemas.MustSubjects("")))
	if err != nil {
		t.Fatal(err)
	}
	return st, js, enriched.CachedInfo().Config
}

// TestDurablePoisonBatch: sluice dev in durable delivery with an enriched
// stream that refuses every event (an operator's max message size): the
// batch is delivered --max-deliver times, then stored whole in the
// dead-letter stream with its reason and delivery count, and leaves the
// ingest stream.
func TestDurablePoisonBatch(t *testing.T) {
	st, js, cfg := durableTwoDeliveries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subjects := schemas.MustSubjects("")
	cfg.MaxMsgSize = 16
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, clients()["h2c"], "http://"+st.gw.Addr()+"/v1/events/quote", "application/json", quoteJSON("AAPL", 189.5, 189.6))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	dlq, err := js.Stream(ctx, bus.DLQStream(subjects))
	if err != nil {
		t.Fatal(err)
	}
	var m *jetstream.RawStreamMsg
	opstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		m, err = dlq.GetLastMsgForSubject(ctx, subjects.DLQ(schemas.KindQuote))
		return err
	})
	if h := m.Header; h.Get(schemas.HeaderReason) != "publish_failed" || h.Get("Sluice-Delivered") != "2" ||
		h.Get(schemas.HeaderFrame) != schemas.FrameBatchV1 || !strings.Contains(h.Get("Sluice-Error"), "exceeds maximum") {
		t.Errorf("dead-lettered batch headers %v", h)
	}
	r := schemas.NewReader(m.Data)
	if n, err := schemas.ReadBatchFrame(&r); err != nil || n != 1 {
		t.Errorf("dead-lettered batch: %d events, %v", n, err)
	}
	cons, err := js.Consumer(ctx, bus.IngestStream(subjects), "quotes")
	if err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending+int(info.NumPending) != 0 {
			return fmt.Errorf("ingest: ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		}
		return nil
	})
}

// TestDurableStoreOutageHeldNotDeadLettered: sluice dev in durable
// delivery, --max-deliver 2, and an enriched stream that is gone for a
// while (a cluster electing its leader looks the same: no stream answers).
// The worker holds the batch and retries the store in place, without
// spending deliveries: nothing reaches the dead-letter stream, and once
// the stream is back the event is stored. Before the fix the batch was
// dead-lettered as publish_failed after its second delivery (TestFaults's
// node case lost acknowledged quotes that way under load).
func TestDurableStoreOutageHeldNotDeadLettered(t *testing.T) {
	st, js, cfg := durableTwoDeliveries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	subjects := schemas.MustSubjects("")
	if err := js.DeleteStream(ctx, cfg.Name); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, clients()["h2c"], "http://"+st.gw.Addr()+"/v1/events/quote", "application/json", quoteJSON("AAPL", 189.5, 189.6))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	dlq, err := js.Stream(ctx, bus.DLQStream(subjects))
	if err != nil {
		t.Fatal(err)
	}
	// Three times what two deliveries take (a nak delay of 1 s each).
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		info, err := dlq.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			m, _ := dlq.GetLastMsgForSubject(ctx, subjects.DLQ(schemas.KindQuote))
			t.Fatalf("the enriched stream's outage dead-lettered the batch: %d in the dead-letter stream, headers %v", info.State.Msgs, m.Header)
		}
	}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		s, err := js.Stream(ctx, cfg.Name)
		if err != nil {
			return err
		}
		if n := s.CachedInfo().State.Msgs; n != 1 {
			return fmt.Errorf("%d events in the enriched stream, want 1", n)
		}
		return nil
	})
	if info, err := dlq.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("dead-letter stream: %v, %v", info, err)
	}
}
