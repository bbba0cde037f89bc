package naive

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops"
)

// pipeline is a naive gateway and worker on an in-process NATS server.
type pipeline struct {
	url string
	nc  *nats.Conn
	cl  *http.Client
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	s, err := ops.RunNATS(ops.NATSOptions{Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	conn := func() *nats.Conn {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	store := enrich.NewStore()
	store.Replace(enrich.Sample())
	w, err := NewWorker(WorkerOptions{Conn: conn(), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(GatewayOptions{Conn: conn(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	cl := &http.Client{Transport: &http.Transport{Protocols: &p}}
	t.Cleanup(func() {
		cl.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := w.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return &pipeline{url: "http://" + g.Addr(), nc: conn(), cl: cl}
}

func (p *pipeline) post(t *testing.T, path, ctype, body string, prefer bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if prefer {
		req.Header.Set("Prefer", "return=representation")
	}
	resp, err := p.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const aapl = `{"symbol":"AAPL","bid":189.52,"ask":189.55,"bid_size":300,"ask_size":200,"venue":"XNAS"}`

// TestRequestReply asks for results: an enriched quote, a rejected one, and
// a batch.
func TestRequestReply(t *testing.T) {
	p := startPipeline(t)
	status, body := p.post(t, "/v1/events/quote", "application/json", aapl, true)
	var ev Enriched
	if err := json.Unmarshal([]byte(body), &ev); status != http.StatusOK || err != nil ||
		ev.Data.Mid == nil || math.Abs(*ev.Data.Mid-189.535) > 1e-9 || ev.Data.Instrument.ISIN != "US0378331005" || ev.ID == "" {
		t.Fatalf("%d %s (%v)", status, body, err)
	}
	status, body = p.post(t, "/v1/events/quote", "application/json",
		`{"symbol":"AAPL","bid":2,"ask":1,"bid_size":1,"ask_size":1}`, true)
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "crossed_quote") {
		t.Fatalf("%d %s", status, body)
	}
	status, body = p.post(t, "/v1/events/trade", "application/x-ndjson",
		`{"symbol":"VOD.L","price":72.1,"size":1000,"venue":"XLON"}`+"\n"+`{"symbol":"NOPE","price":1,"size":1,"venue":"XNAS"}`+"\n", true)
	var res Results
	if err := json.Unmarshal([]byte(body), &res); status != http.StatusOK || err != nil || res.Enriched != 1 || res.Rejected != 1 ||
		res.Results[1].Errors[0].Code != "unknown_instrument" {
		t.Fatalf("%d %s (%v)", status, body, err)
	}
}

// TestPublish fires and forgets, and sees the enriched event and the dead
// letter on NATS.
func TestPublish(t *testing.T) {
	p := startPipeline(t)
	msgs := make(chan *nats.Msg, 10)
	for _, subj := range []string{"naive.enriched.quote.AAPL", "naive.dlq.quote"} {
		if _, err := p.nc.ChanSubscribe(subj, msgs); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	status, body := p.post(t, "/v1/events/quote", "application/json",
		`[`+aapl+`,{"symbol":"AAPL","bid":1,"ask":2,"bid_size":-1,"ask_size":1}]`, false)
	var acc Accepted
	if err := json.Unmarshal([]byte(body), &acc); status != http.StatusAccepted || err != nil || acc.Accepted != 2 || len(acc.IDs) != 2 {
		t.Fatalf("%d %s", status, body)
	}
	seen := map[string]string{}
	for range 2 {
		select {
		case m := <-msgs:
			var v struct {
				ID    string `json:"id"`
				Event struct {
					ID string `json:"id"`
				} `json:"event"`
			}
			if err := json.Unmarshal(m.Data, &v); err != nil {
				t.Fatal(err)
			}
			seen[m.Subject] = v.ID + v.Event.ID
		case <-time.After(5 * time.Second):
			t.Fatalf("saw %v", seen)
		}
	}
	if seen["naive.enriched.quote.AAPL"] != acc.IDs[0] || seen["naive.dlq.quote"] != acc.IDs[1] {
		t.Fatalf("saw %v, accepted %v", seen, acc.IDs)
	}
	if status, _ := p.post(t, "/v1/events/bond", "application/json", aapl, false); status != http.StatusNotFound {
		t.Fatalf("unknown type: %d", status)
	}
	if status, _ := p.post(t, "/v1/events/quote", "text/plain", aapl, false); status != http.StatusBadRequest {
		t.Fatalf("text/plain: %d", status)
	}
}

// TestDurable: the naive pipeline in durable mode answers 202 once the
// request's message is stored, stores the enriched event and the dead
// letter in sluice's streams under its prefix, acks the ingest message
// (the work-queue stream empties), and refuses Prefer with 501.
func TestDurable(t *testing.T) {
	s, err := ops.RunNATS(ops.NATSOptions{Port: -1, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	conn := func() *nats.Conn {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	store := enrich.NewStore()
	store.Replace(enrich.Sample())
	w, err := NewWorker(WorkerOptions{Conn: conn(), Prefix: "nd", Store: store, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(GatewayOptions{Conn: conn(), Prefix: "nd", Listen: "127.0.0.1:0", Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	var pr http.Protocols
	pr.SetUnencryptedHTTP2(true)
	p := &pipeline{url: "http://" + g.Addr(), cl: &http.Client{Transport: &http.Transport{Protocols: &pr}}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := w.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	status, body := p.post(t, "/v1/events/quote", "application/json",
		`[`+aapl+`,{"symbol":"AAPL","bid":1,"ask":2,"bid_size":-1,"ask_size":1}]`, false)
	var acc Accepted
	if err := json.Unmarshal([]byte(body), &acc); status != http.StatusAccepted || err != nil || len(acc.IDs) != 2 {
		t.Fatalf("%d %s", status, body)
	}
	if status, _ := p.post(t, "/v1/events/quote", "application/json", aapl, true); status != http.StatusNotImplemented {
		t.Fatalf("Prefer in durable mode: %d", status)
	}
	js, err := jetstream.New(conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Poll until the worker has stored both outcomes and acked the batch.
	for {
		en, err1 := js.Stream(ctx, "nd-enriched")
		dl, err2 := js.Stream(ctx, "nd-dlq")
		in, err3 := js.Stream(ctx, "nd-ingest")
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if en.CachedInfo().State.Msgs == 1 && dl.CachedInfo().State.Msgs == 1 && in.CachedInfo().State.Msgs == 0 {
			m, err := en.GetLastMsgForSubject(ctx, "nd.enriched.quote.AAPL")
			if err != nil {
				t.Fatal(err)
			}
			var ev Enriched
			if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ID != acc.IDs[0] || m.Header.Get(jetstream.MsgIDHeader) == "" {
				t.Fatalf("enriched %s %v (%v)", m.Data, m.Header, err)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("enriched %d, dlq %d, ingest %d", en.CachedInfo().State.Msgs, dl.CachedInfo().State.Msgs, in.CachedInfo().State.Msgs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
