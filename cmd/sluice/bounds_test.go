package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

// TestEndToEndOversizedFieldRefusedAtEdge is issue #12's trade with a 1 MB
// conditions entry, on the dev stack: once accepted (202, or 504 for a
// caller waiting for its result) and lost when its enriched event could
// not be published, it is now refused 422 by the gateway before anything
// is published, with the failure a worker would give. A trade with every
// field at its bound is enriched as usual.
func TestEndToEndOversizedFieldRefusedAtEdge(t *testing.T) {
	st := stack(t)
	url := "http://" + st.gw.Addr() + "/v1/events/trade"
	enriched := count(t, st.nats.ClientURL(), "sluice.enriched.>")
	for name, c := range clients() {
		for _, prefer := range []string{"return=representation", "return=minimal"} {
			resp, body := post(t, c, url, "application/json",
				`{"symbol":"VOD.L","price":72.5,"size":1000,"venue":"XLON","conditions":["`+strings.Repeat("C", 1<<20)+`"]}`,
				"Prefer", prefer)
			if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s: status %d %s: %.200s", name, prefer, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var p struct {
				Errors []schemas.FieldError `json:"errors"`
			}
			if err := json.Unmarshal(body, &p); err != nil || len(p.Errors) != 1 ||
				p.Errors[0].Field != "conditions" || p.Errors[0].Code != schemas.CodeInvalidField {
				t.Fatalf("%s: problem %.300s (%v)", name, body, err)
			}
		}
	}
	conds := make([]string, schemas.MaxConditions)
	for i := range conds {
		conds[i] = `"` + strings.Repeat("C", schemas.MaxConditionLen) + `"`
	}
	resp, body := post(t, clients()["h2c"], url, "application/json",
		`{"symbol":"VOD.L","price":72.5,"size":1000,"venue":"XLON","trade_id":"`+strings.Repeat("T", schemas.MaxTradeIDLen)+
			`","conditions":[`+strings.Join(conds, ",")+`]}`, "Prefer", "return=representation")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trade at the bounds: status %d: %s", resp.StatusCode, body)
	}
	if n, _ := enriched.get(); n > 1 {
		t.Errorf("%d enriched events, want at most the one at the bounds", n)
	}
}
