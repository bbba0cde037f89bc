package workers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/workers"
)

// startStoreOutage starts a durable quotes worker with MaxDeliver 2 and
// ackWait, deletes the enriched stream (its store then fails for good, as
// ErrNoStream, which looks transient) and stores one batch.
func startStoreOutage(t *testing.T, ackWait time.Duration) (*workers.Worker, *metrics.Set, func(string) int) {
	t.Helper()
	url := runNATS(t)
	js := jsOf(t, connect(t, url))
	set := metrics.NewSet()
	w, err := workers.New(durableQuotes(workers.Options{Conn: connect(t, url), Metrics: set, MaxDeliver: 2, AckWait: ackWait,
		NakDelay: 100 * time.Millisecond, Enricher: sampleEnricher(), Now: func() int64 { return testNow }}))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, bus.EnrichedStream(subjects)); err != nil {
		t.Fatal(err)
	}
	storeBatch(t, js, "", quote("q1", "AAPL", 189.98, 190.02, 0, 0))
	return w, set, func(stream string) int { return streamCount(t, js, stream) }
}

// TestStoreRetryBounded: a store that never comes back is retried in place
// for the batch's AckWait per delivery, then nakked as before, so the
// batch still reaches the dead-letter stream after MaxDeliver deliveries
// (found in review: the retry had no bound, and held the batch for ever).
func TestStoreRetryBounded(t *testing.T) {
	w, set, count := startStoreOutage(t, time.Second)
	defer w.Shutdown(context.Background())
	opstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n := count(bus.DLQStream(subjects)); n != 1 {
			return fmt.Errorf("%d batches dead-lettered", n)
		}
		return nil
	})
	if n := counterValue(set, `sluice_worker_store_retries_total{group="quotes"}`); n == 0 {
		t.Error("the store was not retried in place before the nak")
	}
	// Counted once the dead letter's store is acknowledged, a moment after
	// the stream shows it.
	opstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n := counterValue(set, `sluice_worker_dead_lettered_batches_total{group="quotes",reason="`+workers.ReasonPublishFailed+`"}`); n != 1 {
			return fmt.Errorf("%d batches dead-lettered as %s, want 1", n, workers.ReasonPublishFailed)
		}
		return nil
	})
}

// TestStoreRetryGivesUpOnShutdown: a graceful Shutdown while a store is
// retried in place ends the retry and naks the batch, which stays in the
// ingest stream for another worker (found in review: Shutdown waited for
// its context's end).
func TestStoreRetryGivesUpOnShutdown(t *testing.T) {
	w, set, count := startStoreOutage(t, 30*time.Second)
	opstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if n := counterValue(set, `sluice_worker_store_retries_total{group="quotes"}`); n == 0 {
			return fmt.Errorf("no store retried yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if n := count(bus.IngestStream(subjects)); n != 1 {
		t.Errorf("ingest stream holds %d batches after Shutdown, want 1 (nakked, kept)", n)
	}
	if n := count(bus.DLQStream(subjects)); n != 0 {
		t.Errorf("%d batches dead-lettered, want 0", n)
	}
}

// TestStoreRetryCountsOnce: a batch whose store is retried in place counts
// its rejected events once, when it is stored, not once per attempt.
func TestStoreRetryCountsOnce(t *testing.T) {
	url := runNATS(t)
	js := jsOf(t, connect(t, url))
	set := metrics.NewSet()
	w, err := workers.New(durableQuotes(workers.Options{Conn: connect(t, url), Metrics: set, MaxDeliver: 2,
		NakDelay: 100 * time.Millisecond, Enricher: sampleEnricher(), Now: func() int64 { return testNow }}))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, bus.EnrichedStream(subjects)); err != nil {
		t.Fatal(err)
	}
	storeBatch(t, js, "", quote("q1", "AAPL", 189.98, 190.02, 0, 0), quote("q2", "AAPL", 191, 190, 0, 0))
	retries := `sluice_worker_store_retries_total{group="quotes"}`
	opstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if n := counterValue(set, retries); n < 3 {
			return fmt.Errorf("%d store retries", n)
		}
		return nil
	})
	if _, err := bus.Apply(ctx, js, subjects, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if n := counterValue(set, `sluice_worker_acks_total{group="quotes"}`); n != 1 {
			return fmt.Errorf("%d acks", n)
		}
		return nil
	})
	if n := counterValue(set, `sluice_worker_rejected_total{group="quotes",type="quote",code="crossed_quote"}`); n != 1 {
		t.Errorf("crossed_quote counted %d times after %d store attempts, want once", n, counterValue(set, retries)+1)
	}
}
