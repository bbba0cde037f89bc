package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// TestDurableStack runs sluice dev with every type durable: a 202'd
// trade is in the ingest stream when answered and its enriched event
// reaches the enriched stream; a request that waits gets its result
// through Sluice-Reply; a client retry with the same Idempotency-Key
// yields one enriched event.
func TestDurableStack(t *testing.T) {
	st := stackWith(t, func(c *devConfig) { c.gateway.opts.Delivery = bus.AllModes(bus.ModeDurable) })
	c := clients()["h2c"]
	base := "http://" + st.gw.Addr() + "/v1/events/"
	trade := `{"symbol":"MSFT","price":411,"size":1,"venue":"XNAS"}`
	for range 2 { // a retry of the same request
		if resp, body := post(t, c, base+"trade", "application/json", trade, "Idempotency-Key", "t-1"); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("durable trade: %d %s", resp.StatusCode, body)
		}
	}
	resp, body := post(t, c, base+"quote", "application/json", quoteJSON("AAPL", 1, 1.01), "Prefer", "return=representation")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("durable quote with return=representation: %d %s", resp.StatusCode, body)
	}
	nc, err := nats.Connect(st.nats.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subj := schemas.MustSubjects("")
	count := func(stream, filter string) uint64 {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		return n
	}
	// Both copies of the batch are processed and acknowledged (the ingest
	// stream, work-queue, then no longer holds them); the enriched stream
	// keeps one event.
	opstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := count(bus.IngestStream(subj), "sluice.ingest.>"); n != 0 {
			return fmt.Errorf("%d batches not yet acknowledged", n)
		}
		if n := count(bus.EnrichedStream(subj), "sluice.enriched.trade.>"); n == 0 {
			return fmt.Errorf("no enriched trade yet")
		}
		return nil
	})
	if n := count(bus.EnrichedStream(subj), "sluice.enriched.trade.>"); n != 1 {
		t.Fatalf("enriched trades %d, want 1 for two posts with one Idempotency-Key", n)
	}
	resp, err = http.Get("http://" + st.ops.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(ready), "stream:ingest: ok") {
		t.Fatalf("/readyz %d:\n%s", resp.StatusCode, ready)
	}
	if err := js.DeleteStream(ctx, bus.IngestStream(subj)); err != nil {
		t.Fatal(err)
	}
	if err := st.gw.CheckIngest(); err == nil {
		t.Fatal("CheckIngest passes without the ingest stream")
	}
}

// TestDurableGroupWithoutWorkers: in durable delivery a group whose
// workers died keeps accepting, the events waiting in the stream, until
// its depth reaches its bound; then 503 with Retry-After, naming the
// missing workers.
func TestDurableGroupWithoutWorkers(t *testing.T) {
	st := stackWith(t, func(c *devConfig) {
		c.gateway.opts.Delivery = bus.AllModes(bus.ModeDurable)
		c.gateway.opts.Admission.Shed.MaxDepth = 400 // normal priority shed at 200 events
	})
	c := clients()["h2c"]
	base := "http://" + st.gw.Addr() + "/v1/events/"
	st.conns[0].Close() // the quotes worker's connection: as if the process died
	st.workers = st.workers[1:]
	accepted := 0
	opstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		resp, body := post(t, c, base+"quote", "application/x-ndjson", ndjsonQuotes(10))
		switch {
		case resp.StatusCode == http.StatusAccepted:
			accepted += 10
			return fmt.Errorf("accepted %d events so far", accepted)
		case resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "":
			t.Fatalf("status %d (Retry-After %q): %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		case !strings.Contains(string(body), "no live workers"):
			return fmt.Errorf("503 before the group counts no workers: %s", body)
		}
		return nil
	})
	if accepted < 200 {
		t.Errorf("accepted %d events without workers, want at least the 200 under the normal threshold", accepted)
	}
	if resp, body := post(t, c, base+"trade", "application/json", `{"symbol":"MSFT","price":411,"size":1,"venue":"XNAS"}`,
		"Prefer", "return=representation"); resp.StatusCode != http.StatusOK {
		t.Fatalf("trades must be unaffected: %d %s", resp.StatusCode, body)
	}
}
