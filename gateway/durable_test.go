package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// durable makes every type durable.
func durable(o *Options) { o.Delivery = bus.AllModes(bus.ModeDurable) }

// ingestMsgs returns the batch frames stored in the ingest stream now, in
// stream order, read straight from the stream (no polling: what a 202
// promised must be there when it was answered).
func (e *testEnv) ingestMsgs() []*jetstream.RawStreamMsg {
	e.t.Helper()
	nc, err := nats.Connect(e.natsURL)
	if err != nil {
		e.t.Fatalf("connecting: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.IngestStream(e.subj))
	if err != nil {
		e.t.Fatalf("ingest stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

func storedEvents(t *testing.T, msgs []*jetstream.RawStreamMsg) []schemas.Event {
	t.Helper()
	var evs []schemas.Event
	for _, m := range msgs {
		evs = append(evs, decodeFrame(t, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})...)
	}
	return evs
}

// TestDurableAcceptedMeansStored: in durable mode a 202 is answered once
// the ingest stream holds the batch, with the frame's headers: a
// Nats-Msg-Id unique to the gateway and batch, and Sluice-Reply only when
// an event waits for a result.
func TestDurableAcceptedMeansStored(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, durable)
		resp, body := e.post("trade", "application/json", `{"symbol":"AAPL","price":101.5,"size":10}`)
		ids := wantAccepted(t, resp, body, 1)
		msgs := e.ingestMsgs()
		if len(msgs) != 1 {
			t.Fatalf("ingest stream holds %d messages after the 202, want 1", len(msgs))
		}
		m := msgs[0]
		if m.Subject != e.subj.Ingest(schemas.KindTrade) {
			t.Errorf("subject %q, want %q", m.Subject, e.subj.Ingest(schemas.KindTrade))
		}
		id := m.Header.Get(bus.HeaderMsgID)
		if want := e.srv.dur.id + ".trade." + m.Header.Get(schemas.HeaderBatch); id != want {
			t.Errorf("Nats-Msg-Id %q, want %q", id, want)
		}
		if r := m.Header.Get(schemas.HeaderReply); r != "" {
			t.Errorf("Sluice-Reply %q on a batch nobody waits for", r)
		}
		evs := storedEvents(t, msgs)
		if len(evs) != 1 || evs[0].ID != ids[0] {
			t.Fatalf("stored events %+v, want the one with id %s", evs, ids[0])
		}
		if got := e.set.GetOrCreateCounter(`sluice_gateway_publish_acks_total`).Get(); got != 1 {
			t.Errorf("publish acks %d, want 1", got)
		}

		// A request that waits for its result: the batch carries the
		// inbox in Sluice-Reply (msg.Reply is JetStream's); nobody
		// answers here, so the request times out, and the batch is stored.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/events/quote",
			strings.NewReader(quoteJSONBody("MSFT")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Prefer", "return=representation")
		if resp, err := e.client.Do(req); err == nil {
			resp.Body.Close()
		}
		opstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			if n := len(e.ingestMsgs()); n != 2 {
				return errors.New("the waiting request's batch is not stored yet: " + strconv.Itoa(n))
			}
			return nil
		})
		q := e.ingestMsgs()[1]
		if r := q.Header.Get(schemas.HeaderReply); r != e.srv.inbox+".quote" {
			t.Errorf("Sluice-Reply %q, want %q", r, e.srv.inbox+".quote")
		}
	})
}

// TestCoreWaitingBatchCarriesReplyHeader: core frames carry Sluice-Reply
// when an event waits, and msg.Reply as before.
func TestCoreWaitingBatchCarriesReplyHeader(t *testing.T) {
	e := newTestEnv(t, "h1", nil)
	fs := e.subscribeFrames(schemas.KindQuote)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/events/quote", strings.NewReader(quoteJSONBody("MSFT")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", "return=representation")
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
	}
	m, _ := fs.next()
	if r := m.Header.Get(schemas.HeaderReply); r != e.srv.inbox+".quote" || m.Reply != r {
		t.Errorf("Sluice-Reply %q, msg.Reply %q, want both %q", r, m.Reply, e.srv.inbox+".quote")
	}
	resp, body := e.post("quote", "application/json", quoteJSONBody("MSFT"))
	wantAccepted(t, resp, body, 1)
	if m, _ := fs.next(); m.Header.Get(schemas.HeaderReply) != "" {
		t.Errorf("Sluice-Reply on a batch nobody waits for")
	}
}

// TestIdempotencyKeyIDs: events without an id take the Idempotency-Key
// (one event) or key-index (a batch), so a retry carries the same ids.
func TestIdempotencyKeyIDs(t *testing.T) {
	e := newTestEnv(t, "h2c", nil, durable)
	for range 2 { // a retry: the same ids
		resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"), "Idempotency-Key", "order-42")
		if ids := wantAccepted(t, resp, body, 1); ids[0] != "order-42" {
			t.Fatalf("id %q, want the key", ids[0])
		}
	}
	batch := "[" + quoteJSONBody("AAPL") + "," + quoteJSONBody("MSFT") + "," + quoteJSONBody("IBM") + "]"
	resp, body := e.post("quote", "application/json", batch, "Idempotency-Key", "b7")
	ids := wantAccepted(t, resp, body, 3)
	if ids[0] != "b7-0" || ids[1] != "b7-1" || ids[2] != "b7-2" {
		t.Fatalf("ids %q, want b7-0 b7-1 b7-2", ids)
	}
	// A CloudEvents id wins over the key.
	ce := `{"specversion":"1.0","id":"mine","source":"urn:s","type":"marketdata.quote.v1","data":` + quoteJSONBody("MSFT") + `}`
	resp, body = e.post("quote", "application/cloudevents+json", ce, "Idempotency-Key", "k9")
	if ids := wantAccepted(t, resp, body, 1); ids[0] != "mine" {
		t.Fatalf("id %q, want the CloudEvents id", ids[0])
	}
	evs := storedEvents(t, e.ingestMsgs())
	var got []string
	for _, ev := range evs {
		got = append(got, ev.ID)
	}
	if strings.Join(got, " ") != "order-42 order-42 b7-0 b7-1 b7-2 mine" {
		t.Fatalf("stored ids %q", got)
	}
	resp, body = e.post("quote", "application/json", quoteJSONBody("AAPL"), "Idempotency-Key", "bad key")
	wantProblem(t, resp, body, http.StatusBadRequest, "Idempotency-Key")
	resp, body = e.post("quote", "application/json", quoteJSONBody("AAPL"), "Idempotency-Key", strings.Repeat("k", 200))
	wantProblem(t, resp, body, http.StatusBadRequest, "Idempotency-Key")
}

// TestDurableStoreFailureIs503: when the stream cannot store a batch (here
// it was deleted under the gateway), the publish is retried within the
// budget and the request answered 503 with Retry-After.
func TestDurableStoreFailureIs503(t *testing.T) {
	e := newTestEnv(t, "h1", nil, durable, func(o *Options) { o.Durable.AckTimeout = 200 * time.Millisecond })
	resp, body := e.post("trade", "application/json", `{"symbol":"AAPL","price":101.5,"size":10}`)
	wantAccepted(t, resp, body, 1)
	if err := e.srv.CheckIngest(); err != nil {
		t.Errorf("CheckIngest: %v", err)
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(context.Background(), bus.IngestStream(e.subj)); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.CheckIngest(); err == nil {
		t.Error("CheckIngest: nil without the ingest stream")
	}
	resp, body = e.post("trade", "application/json", `{"symbol":"AAPL","price":101.5,"size":10}`)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "storing the batch")
	if g := e.set.GetOrCreateGauge(`sluice_gateway_publish_retries_total`, nil).Get(); g < 1 {
		t.Errorf("retries %v, want at least one", g)
	}
}

// TestDurableIncompatibleStreamFailsStart: an ingest stream that exists
// with another retention is not changed; Start fails naming the field.
func TestDurableIncompatibleStreamFailsStart(t *testing.T) {
	_, url := opstest.RunNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var subj schemas.Subjects
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: bus.IngestStream(subj),
		Subjects: []string{subj.Prefix() + ".ingest.>"}, Retention: jetstream.LimitsPolicy}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Conn: nc, Listen: "127.0.0.1:0", Delivery: bus.AllModes(bus.ModeDurable)})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start()
	if err == nil {
		_ = srv.Shutdown(context.Background())
		t.Fatal("Start succeeded on an incompatible ingest stream")
	}
	if !errors.Is(err, bus.ErrIncompatibleStream) || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("Start: %v, want an incompatible stream error naming retention", err)
	}
}

// TestDurableGroupWithoutWorkersAccepts: with admission on and no worker,
// a durable group accepts while its backlog is under its bound, then sheds
// with 503 and Retry-After; a core group refuses at once.
func TestDurableGroupWithoutWorkersAccepts(t *testing.T) {
	e := newTestEnv(t, "h1", nil, func(o *Options) {
		o.Delivery[schemas.KindTrade] = bus.ModeDurable
		o.Admission = AdmissionOptions{Shed: admit.ShedOptions{ColdDepth: 4, MinDepth: 4}}
	})
	resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"))
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "no live workers")
	trade := `{"symbol":"AAPL","price":101.5,"size":10}`
	// Normal priority is shed at half the bound of 4: two are accepted.
	for range 2 {
		resp, body := e.post("trade", "application/json", trade)
		wantAccepted(t, resp, body, 1)
	}
	resp, body = e.post("trade", "application/json", trade)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "shedding normal priority", "2 stored in the stream", "no live workers")
	if n := len(e.ingestMsgs()); n != 2 {
		t.Errorf("ingest stream holds %d batches, want the 2 accepted", n)
	}
	// A worker's load report with the consumer's backlog replaces the
	// estimate: the backlog drained, the group accepts again.
	lr := schemas.LoadReport{Worker: "w1", Group: "trades", IntervalMS: 100, MaxRate: 1000}
	if err := e.nc.Publish(e.subj.Load("trades"), lr.AppendMsgpack(nil)); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if d := e.srv.adm.groups[schemas.KindTrade].load.Depth(); d != 0 {
			return errors.New("depth " + strconv.FormatInt(d, 10))
		}
		return nil
	})
	lr.ConsumerPending, lr.ConsumerAckPending = 300, 100
	if err := e.nc.Publish(e.subj.Load("trades"), lr.AppendMsgpack(nil)); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if d := e.srv.adm.groups[schemas.KindTrade].load.Depth(); d != 400 {
			return errors.New("depth " + strconv.FormatInt(d, 10) + ", want 400 (batches of one event)")
		}
		return nil
	})
}

// TestQueueDelayPerType: AdmissionOptions.QueueDelays sets the depth
// bound of a type's group apart from the others'.
func TestQueueDelayPerType(t *testing.T) {
	a := newAdmission(AdmissionOptions{Shed: admit.ShedOptions{MaxQueueDelay: 250 * time.Millisecond},
		QueueDelays: map[schemas.Kind]time.Duration{schemas.KindTrade: 2 * time.Second}}, schemas.Subjects{}, metrics.NewSet())
	now := time.Now()
	for _, g := range []string{"quotes", "trades"} {
		a.byName[g].load.Observe(&schemas.LoadReport{Worker: "w-" + g, Group: g, IntervalMS: 100, MaxRate: 10_000}, now)
	}
	if q, tr := a.groups[schemas.KindQuote].load.Bound(), a.groups[schemas.KindTrade].load.Bound(); q != 2500 || tr != 20_000 {
		t.Fatalf("bounds quote %d trade %d, want 2500 (250ms) and 20000 (2s) at 10000 events/s", q, tr)
	}
}

// TestDurableBackpressure: with --durable-max-pending batches awaiting
// their acks, a request of a durable type is refused with 503 before its
// body is read, and counted; once acks come back it is accepted.
func TestDurableBackpressure(t *testing.T) {
	e := newTestEnv(t, "h2c", nil, durable, func(o *Options) {
		o.Admission = AdmissionOptions{}
		o.Durable.MaxPending = 8
	})
	d := e.srv.dur
	d.inflight.Add(8) // as if 8 batches awaited their acks
	resp, body := e.post("trade", "application/json", `{"symbol":"AAPL","price":101.5,"size":10}`)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "--durable-max-pending")
	if n := e.counter(`sluice_gateway_rejected_total{reason="backpressure",priority="normal",group="trades"}`); n != 1 {
		t.Errorf("backpressure rejections %d, want 1", n)
	}
	d.inflight.Add(-8)
	resp, body = e.post("trade", "application/json", `{"symbol":"AAPL","price":101.5,"size":10}`)
	wantAccepted(t, resp, body, 1)
}
