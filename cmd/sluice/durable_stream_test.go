package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway/stream"
)

// TestDurableStreamResume: with durable delivery the gateway serves the
// enriched stream's events through the workers: a replay from since_seq,
// then a resume from a token, each event once and in order.
func TestDurableStreamResume(t *testing.T) {
	st := stackWith(t, func(c *devConfig) { c.gateway.opts.Delivery = bus.AllModes(bus.ModeDurable) })
	c := clients()["h2c"]
	base := "http://" + st.gw.Addr()
	for i := 1; i <= 3; i++ {
		trade := fmt.Sprintf(`{"symbol":"MSFT","price":411,"size":%d,"venue":"XNAS"}`, i)
		if resp, body := post(t, c, base+"/v1/events/trade", "application/json", trade, "Prefer", "return=representation"); resp.StatusCode != http.StatusOK {
			t.Fatalf("trade %d: %d %s", i, resp.StatusCode, body)
		}
	}
	type line struct {
		Type  string  `json:"type"`
		Token string  `json:"sluicetoken"`
		Seq   float64 `json:"sluiceseq"`
		Data  struct {
			Size float64 `json:"size"`
		} `json:"data"`
	}
	read := func(extra url.Values, n int) []line {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := stream.Dial(ctx, c, base, "trade", []string{"MSFT"}, extra)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []line
		for len(out) < n {
			b, err := r.Next()
			if err != nil {
				t.Fatalf("after %d events: %v", len(out), err)
			}
			var l line
			if err := json.Unmarshal(b, &l); err != nil {
				t.Fatal(err)
			}
			out = append(out, l)
		}
		return out
	}
	all := read(url.Values{"since_seq": {"1"}}, 3)
	for i, l := range all {
		if l.Data.Size != float64(i+1) || l.Seq != float64(i+1) || l.Token == "" {
			t.Fatalf("event %d: %+v, want trade %d with a token", i, l, i+1)
		}
	}
	if got := read(url.Values{"last_event_id": {all[1].Token}}, 1); got[0].Data.Size != 3 || got[0].Token != all[2].Token {
		t.Fatalf("resumed after the second trade: %+v, want the third (%s)", got[0], all[2].Token)
	}
	snap := read(nil, 2)
	if snap[0].Data.Size != 3 || snap[1].Type != stream.TypeSnapshotEnd {
		t.Fatalf("snapshot %+v, want trade 3 then the marker", snap)
	}
}
