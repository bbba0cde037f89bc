package workers_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

// runNATSMaxPayload starts a NATS server whose max_payload is maxPayload
// bytes and returns its URL.
func runNATSMaxPayload(t *testing.T, maxPayload int32) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT,
		MaxPayload: maxPayload, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(waitFor) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}

// bigTrade is a trade with every variable-size field at its bound: valid,
// but its enriched form (the instrument's reference data and the derived
// fields added) is larger than the event.
func bigTrade(id string, corr uint64, seq uint32) *schemas.Event {
	ev := trade(id, "VOD.L", "XLON", 72.5, 1000, corr, seq)
	ev.ID = id + strings.Repeat("i", schemas.MaxIDLen-len(id))
	ev.Trade.TradeID = strings.Repeat("T", schemas.MaxTradeIDLen)
	ev.Trade.Conditions = make([]string, schemas.MaxConditions)
	for i := range ev.Trade.Conditions {
		ev.Trade.Conditions[i] = strings.Repeat("C", schemas.MaxConditionLen)
	}
	return ev
}

// TestEnrichedTooLargeIsDeadLettered: on a NATS server whose max_payload
// holds the batch but not the enriched event (nor a reply carrying it), the
// event is rejected with too_large: dead-lettered as it came, counted as
// rejected, and the waiting caller's result is 422. Before, the enriched
// event and the reply were dropped with a log line.
func TestEnrichedTooLargeIsDeadLettered(t *testing.T) {
	big := bigTrade("big", 7, 0)
	// Room for the batch frame and its headers, and for the dead letter
	// (the event and its failure), not for the enriched event: the
	// instrument's name alone is 2,000 bytes.
	maxPayload := len(frame(big)) + 400
	rd := enrich.Sample()
	for i := range rd.Instruments {
		if rd.Instruments[i].Symbol == "VOD.L" {
			rd.Instruments[i].Name = strings.Repeat("N", 2000)
		}
	}
	store := enrich.NewStore()
	store.Replace(rd)
	url := runNATSMaxPayload(t, int32(maxPayload))
	set := metrics.NewSet()
	w := startWorker(t, url, workers.Options{Group: "trades", Metrics: set, Enricher: &enrich.Enricher{Store: store}})
	nc := connect(t, url)
	dlq := collect(t, nc, "sluice.dlq.trade")
	enriched := collect(t, nc, "sluice.enriched.>")
	reply, replies := inbox(t, nc)

	publishBatch(t, nc, schemas.KindTrade, reply, big)

	res := waitReply(t, replies)
	if len(res) != 1 || res[0].Status != 422 || res[0].Corr != 7 {
		t.Fatalf("results = %+v, want one 422", res)
	}
	if e := res[0].Errors; len(e) != 1 || e[0].Code != schemas.CodeTooLarge || e[0].Field != "event" {
		t.Errorf("errors = %+v, want one too_large", e)
	}
	msgs := dlq.wait(t, 1)
	if got := msgs[0].Header.Get(schemas.HeaderReason); got != schemas.CodeTooLarge {
		t.Errorf("%s = %q, want %q", schemas.HeaderReason, got, schemas.CodeTooLarge)
	}
	d := decodeDeadLetter(t, msgs[0].Data)
	if want := big.AppendMsgpack(nil); !bytes.Equal(d.Event, want) {
		t.Errorf("dead letter holds %d bytes, want the event as sent (%d bytes)", len(d.Event), len(want))
	}
	settle(t, func() int { return int(w.Processed()) }, 1, nc)
	if s := w.Stats(); s.Rejected != 1 || s.Enriched != 0 {
		t.Errorf("stats %+v, want 1 rejected", s)
	}
	if n := set.GetOrCreateCounter(`sluice_worker_rejected_total{group="trades",type="trade",code="too_large"}`).Get(); n != 1 {
		t.Errorf("rejected_total{code=too_large} = %d, want 1", n)
	}
	if n := len(enriched.Msgs()); n != 0 {
		t.Errorf("%d enriched events published", n)
	}
}

// TestReplyFramesSplitUnderMaxPayload: the results of a batch that do not
// fit one reply frame come in several, none over max_payload, all there.
func TestReplyFramesSplitUnderMaxPayload(t *testing.T) {
	evs := make([]*schemas.Event, 8)
	for i := range evs {
		evs[i] = trade("t"+string(rune('a'+i)), "VOD.L", "XLON", 72.5, 1000, 9, uint32(i))
	}
	const maxPayload = 4096
	url := runNATSMaxPayload(t, maxPayload)
	startWorker(t, url, workers.Options{Group: "trades"})
	nc := connect(t, url)
	reply, replies := inbox(t, nc)
	publishBatch(t, nc, schemas.KindTrade, reply, evs...)
	got := 0
	frames := 0
	for got < len(evs) {
		m, err := replies.NextMsg(waitFor)
		if err != nil {
			t.Fatalf("after %d results in %d frames: %v", got, frames, err)
		}
		if len(m.Data) > maxPayload {
			t.Errorf("reply frame of %d bytes", len(m.Data))
		}
		for _, r := range decodeReply(t, m) {
			if r.Status != 200 || r.Seq != uint32(got) {
				t.Errorf("result %+v, want 200 seq %d", r, got)
			}
			got++
		}
		frames++
	}
	if frames < 2 {
		t.Errorf("%d results in %d frame: want them split", got, frames)
	}
}
