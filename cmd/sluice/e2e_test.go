package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// stack starts a `sluice dev` stack on free ports and stops it at cleanup.
func stack(t *testing.T) *devStack { t.Helper(); return stackWith(t, nil) }

// stackWith is stack with its configuration adjusted by tune first.
func stackWith(t *testing.T, tune func(*devConfig)) *devStack {
	t.Helper()
	var cfg devConfig
	cfg.gateway.opts.Listen = "127.0.0.1:0"
	cfg.opsAddr = "127.0.0.1:0"
	cfg.natsListen = "127.0.0.1:0"
	cfg.subjects = schemas.MustSubjects("")
	cfg.refdata = enrich.Sample()
	// SLUICE_DELIVERY runs the stack tests in another delivery mode:
	// SLUICE_DELIVERY=durable go test ./cmd/sluice -run ...
	if v := os.Getenv("SLUICE_DELIVERY"); v != "" {
		ms, err := parseDelivery(v)
		if err != nil {
			t.Fatalf("SLUICE_DELIVERY: %v", err)
		}
		cfg.gateway.opts.Delivery = ms
	}
	if tune != nil {
		tune(&cfg)
	}
	st, err := startStack(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("starting stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := st.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return st
}

// h2c is an HTTP/2 client with prior knowledge; h1 speaks HTTP/1.1.
func clients() map[string]*http.Client {
	var p2, p1 http.Protocols
	p2.SetUnencryptedHTTP2(true)
	p1.SetHTTP1(true)
	return map[string]*http.Client{
		"h2c": {Transport: &http.Transport{Protocols: &p2}, Timeout: 10 * time.Second},
		"h1":  {Transport: &http.Transport{Protocols: &p1}, Timeout: 10 * time.Second},
	}
}

func post(t *testing.T, c *http.Client, url, ctype, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// counter subscribes to subject and counts messages and distinct event ids.
type counter struct {
	mu  sync.Mutex
	n   int
	ids map[string]int
	sub *nats.Subscription
}

func count(t *testing.T, url, subject string) *counter {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := &counter{ids: map[string]int{}}
	c.sub, err = nc.Subscribe(subject, func(m *nats.Msg) {
		id := ""
		r := schemas.NewReader(m.Data)
		var dl schemas.DeadLetter
		if strings.Contains(m.Subject, ".dlq.") && dl.DecodeMsgpack(&r) == nil {
			r = schemas.NewReader(dl.Event)
		} else {
			r = schemas.NewReader(m.Data)
		}
		var ev schemas.Event
		if ev.DecodeMsgpack(&r) == nil {
			id = strings.Clone(ev.ID)
		}
		c.mu.Lock()
		c.n++
		c.ids[id]++
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *counter) get() (n, distinct int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, len(c.ids)
}

func quoteJSON(sym string, bid, ask float64) string {
	return fmt.Sprintf(`{"symbol":%q,"bid":%g,"ask":%g,"bid_size":100,"ask_size":200,"venue":"XNAS"}`, sym, bid, ask)
}

func TestEndToEndQuote(t *testing.T) {
	st := stack(t)
	url := "http://" + st.gw.Addr() + "/v1/events/quote"
	for name, c := range clients() {
		t.Run(name, func(t *testing.T) {
			resp, body := post(t, c, url, "application/json", quoteJSON("AAPL", 189.52, 189.56), "Prefer", "return=representation")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if want := map[string]int{"h2c": 2, "h1": 1}[name]; resp.ProtoMajor != want {
				t.Errorf("proto %s, want HTTP/%d", resp.Proto, want)
			}
			var ev struct {
				Type    string `json:"type"`
				Subject string `json:"subject"`
				Data    struct {
					Mid        float64 `json:"mid"`
					Spread     float64 `json:"spread"`
					SpreadBps  float64 `json:"spread_bps"`
					Instrument struct {
						Name     string `json:"name"`
						Currency string `json:"currency"`
					} `json:"instrument"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if ev.Type != schemas.TypeQuoteEnrichedV1 || ev.Subject != "AAPL" {
				t.Errorf("type %q subject %q", ev.Type, ev.Subject)
			}
			if d := ev.Data; abs(d.Mid-189.54) > 1e-9 || abs(d.Spread-0.04) > 1e-9 || d.Instrument.Name != "Apple Inc." || d.Instrument.Currency != "USD" {
				t.Errorf("enriched data %+v", d)
			}
			if ev.Data.SpreadBps != 2.1104 { // 0.04/189.54*1e4 to 4 decimals
				t.Errorf("spread_bps %v", ev.Data.SpreadBps)
			}
		})
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestEndToEndCrossedQuoteGoesToDLQ(t *testing.T) {
	st := stack(t)
	dlq := count(t, st.nats.ClientURL(), "sluice.dlq.quote")
	resp, body := post(t, clients()["h2c"], "http://"+st.gw.Addr()+"/v1/events/quote", "application/json",
		quoteJSON("MSFT", 411.0, 410.9), "Prefer", "return=representation")
	if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var p struct {
		Errors []schemas.FieldError `json:"errors"`
	}
	if err := json.Unmarshal(body, &p); err != nil || len(p.Errors) != 1 || p.Errors[0].Code != schemas.CodeCrossedQuote {
		t.Fatalf("problem %s (%v)", body, err)
	}
	opstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n, _ := dlq.get(); n != 1 {
			return fmt.Errorf("%d dead letters, want 1", n)
		}
		return nil
	})
}

func TestEndToEndNDJSONBatch(t *testing.T) {
	st := stack(t)
	enriched := count(t, st.nats.ClientURL(), "sluice.enriched.quote.>")
	dlq := count(t, st.nats.ClientURL(), "sluice.dlq.quote")
	syms := []string{"AAPL", "MSFT", "BRK.B", "SPY", "VOD.L", "7203.T"}
	var body strings.Builder
	for i := 0; i < 1000; i++ {
		bid := 100 + float64(i%50)
		ask := bid + 1 // a whole tick of every symbol (7203.T's is 1 yen)
		if i%10 == 3 { // 100 invalid: crossed
			ask = bid - 1
		}
		body.WriteString(quoteJSON(syms[i%len(syms)], bid, ask))
		body.WriteByte('\n')
	}
	resp, out := post(t, clients()["h2c"], "http://"+st.gw.Addr()+"/v1/events/quote", "application/x-ndjson", body.String())
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	var acc struct {
		Accepted int      `json:"accepted"`
		IDs      []string `json:"ids"`
	}
	if err := json.Unmarshal(out, &acc); err != nil || acc.Accepted != 1000 || len(acc.IDs) != 1000 {
		t.Fatalf("accepted %d ids %d (%v)", acc.Accepted, len(acc.IDs), err)
	}
	opstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		en, ed := enriched.get()
		dn, dd := dlq.get()
		if en != 900 || dn != 100 {
			return fmt.Errorf("enriched %d dead letters %d, want 900 and 100", en, dn)
		}
		if ed != 900 || dd != 100 {
			return fmt.Errorf("distinct ids: enriched %d dead letters %d", ed, dd)
		}
		return nil
	})
	// Nothing more arrives: no event was processed twice.
	time.Sleep(200 * time.Millisecond)
	if en, _ := enriched.get(); en != 900 {
		t.Fatalf("enriched %d after settling, want 900", en)
	}
}

func TestEndToEndDottedSymbol(t *testing.T) {
	st := stack(t)
	brk := count(t, st.nats.ClientURL(), "sluice.enriched.quote.BRK_B")
	resp, body := post(t, clients()["h2c"], "http://"+st.gw.Addr()+"/v1/events/quote", "application/json",
		quoteJSON("BRK.B", 452.10, 452.20), "Prefer", "return=representation")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"subject":"BRK.B"`)) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	opstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n, _ := brk.get(); n != 1 {
			return fmt.Errorf("%d events on sluice.enriched.quote.BRK_B", n)
		}
		return nil
	})
}

func TestEndToEndReferenceDataUpdate(t *testing.T) {
	st := stack(t)
	url := "http://" + st.gw.Addr() + "/v1/events/quote"
	c := clients()["h2c"]
	resp, body := post(t, c, url, "application/json", quoteJSON("NEWCO", 10, 10.1), "Prefer", "return=representation")
	if resp.StatusCode != http.StatusUnprocessableEntity || !bytes.Contains(body, []byte(schemas.CodeUnknownInstrument)) {
		t.Fatalf("before the update: status %d: %s", resp.StatusCode, body)
	}
	nc, err := nats.Connect(st.nats.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), enrich.BucketName("sluice"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(schemas.Instrument{Symbol: "NEWCO", Name: "New Co", MIC: "XNAS", Currency: "USD", AssetClass: "equity", TickSize: 0.01, LotSize: 1})
	if _, err := kv.Put(context.Background(), enrich.InstrumentKey("NEWCO"), in); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		resp, body := post(t, c, url, "application/json", quoteJSON("NEWCO", 10, 10.1), "Prefer", "return=representation")
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"name":"New Co"`)) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	})
}

func TestEndToEndTradeFX(t *testing.T) {
	st := stack(t)
	resp, body := post(t, clients()["h2c"], "http://"+st.gw.Addr()+"/v1/events/trade", "application/json",
		`{"symbol":"VOD.L","price":72.5,"size":1000,"venue":"XLON","trade_id":"t1","conditions":["@"]}`, "Prefer", "return=representation")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var ev struct {
		Data struct {
			Notional    float64 `json:"notional"`
			NotionalUSD float64 `json:"notional_usd"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	rate, _ := st.rate("GBX")
	if abs(ev.Data.Notional-72500) > 1e-6 || abs(ev.Data.NotionalUSD-72500*rate) > 1e-6 {
		t.Fatalf("notional %v usd %v (rate %v)", ev.Data.Notional, ev.Data.NotionalUSD, rate)
	}
}

// rate looks the sample FX rate up.
func (st *devStack) rate(cur string) (float64, bool) {
	for _, fx := range enrich.Sample().FX {
		if fx.Currency == cur {
			return fx.USDRate, true
		}
	}
	return 0, false
}
