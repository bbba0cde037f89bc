package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// runNATSMaxPayload starts a NATS server whose max_payload is maxPayload
// bytes, so that the size limits are met with small messages.
func runNATSMaxPayload(t *testing.T, maxPayload int32) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT,
		MaxPayload: maxPayload, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}

// bigTrade is a trade CloudEvent (structured JSON) whose every
// variable-size field is at its bound: about 1.2 KB as MessagePack, though
// no field is too long.
func bigTrade(id string) string {
	conds := make([]string, schemas.MaxConditions)
	for i := range conds {
		conds[i] = `"` + strings.Repeat("C", schemas.MaxConditionLen) + `"`
	}
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":"marketdata.trade.v1","subject":%q,"dataschema":%q,`+
		`"data":{"symbol":%q,"price":1.5,"size":100,"venue":"XNYS","trade_id":%q,"conditions":[%s]}}`,
		id+strings.Repeat("i", schemas.MaxIDLen-len(id)), strings.Repeat("s", schemas.MaxSourceLen),
		strings.Repeat("S", schemas.MaxSubjectLen), "urn:"+strings.Repeat("d", schemas.MaxDataSchemaLen-4),
		strings.Repeat("Y", schemas.MaxSymbolLen), strings.Repeat("T", schemas.MaxTradeIDLen), strings.Join(conds, ","))
}

const smallTradeCE = `{"specversion":"1.0","id":"small","source":"s","type":"marketdata.trade.v1","data":{"symbol":"IBM","price":1.5,"size":100,"venue":"XNYS"}}`

// TestEventOverMaxPayload: an event that can never fit in one NATS message
// (its batch frame would pass the server's max_payload) is refused 413,
// naming its position and the limit, without Retry-After, and nothing of
// its request is published; the gateway publishes the next request as
// usual.
func TestEventOverMaxPayload(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		url := runNATSMaxPayload(t, 1024)
		e := newTestEnvOn(t, url, mode, nil)
		frames := e.subscribeFrames(schemas.KindTrade)
		resp, body := e.post("trade", "application/cloudevents-batch+json", "["+smallTradeCE+","+bigTrade("big")+"]")
		p := wantProblem(t, resp, body, http.StatusRequestEntityTooLarge, "event 1 is ", "bytes as MessagePack, more than the 763 bytes", "nothing was published")
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			t.Errorf("413 with Retry-After %q: the event can never fit", ra)
		}
		_ = p
		resp, body = e.post("trade", "application/cloudevents+json", smallTradeCE)
		wantAccepted(t, resp, body, 1)
		if _, evs := frames.next(); len(evs) != 1 || evs[0].ID != "small" {
			t.Fatalf("first frame after the 413 holds %d events (%+v): want only the later request's", len(evs), evs)
		}
		resp, body = e.post("trade", "application/cloudevents+json", bigTrade("alone"))
		wantProblem(t, resp, body, http.StatusRequestEntityTooLarge, "the event is ")
	})
}

// TestFieldBoundsAtEdge: a field past its size bound makes the request 422
// with the field's failure (invalid_field, as the worker would say) before
// anything is published; fields at their bounds pass.
func TestFieldBoundsAtEdge(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		frames := e.subscribeFrames(schemas.KindTrade)
		trade := func(extra string) string {
			return `{"symbol":"IBM","price":1.5,"size":100,"venue":"XNYS"` + extra + `}`
		}
		list := func(n, size int) string {
			c := make([]string, n)
			for i := range c {
				c[i] = `"` + strings.Repeat("C", size) + `"`
			}
			return "[" + strings.Join(c, ",") + "]"
		}
		for _, tt := range []struct {
			name, body, field, detail string
		}{
			{"symbol", `[` + trade("") + `,{"symbol":"` + strings.Repeat("Y", 33) + `","price":1,"size":1,"venue":"XNYS"}]`,
				"symbol", "event 1: symbol must be 1 to 32 characters"},
			{"conditions count", trade(`,"conditions":` + list(17, 1)), "conditions", "conditions has 17 entries, more than 16"},
			{"condition of 1 MB", trade(`,"conditions":` + list(1, 1<<20)), "conditions", "conditions[0] is 1048576 bytes long, more than 16"},
			{"trade_id", trade(`,"trade_id":"` + strings.Repeat("T", 65) + `"`), "trade_id", "trade_id is 65 bytes long, more than 64"},
			{"venue", `{"symbol":"IBM","price":1.5,"size":100,"venue":"` + strings.Repeat("V", 1000) + `"}`, "venue", "venue is 1000 bytes long, not a MIC"},
		} {
			resp, body := e.post("trade", "application/json", tt.body)
			p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, tt.detail, "nothing was published")
			if len(p.Errors) != 1 || p.Errors[0].Field != tt.field || p.Errors[0].Code != schemas.CodeInvalidField {
				t.Errorf("%s: errors %+v, want one invalid_field for %s", tt.name, p.Errors, tt.field)
			}
		}
		resp, body := e.post("trade", "application/json", trade(`,"trade_id":"`+strings.Repeat("T", 64)+`","conditions":`+list(16, 16)))
		ids := wantAccepted(t, resp, body, 1)
		if _, evs := frames.next(); len(evs) != 1 || evs[0].ID != ids[0] {
			t.Fatalf("first frame holds %+v: want only the event at the bounds", evs)
		}
	})
}

// TestBatcherFramesUnderMaxPayload: a batcher whose MaxBytes is above the
// server's max_payload (the options could not check it: the gateway had not
// connected yet) still builds no frame NATS would refuse.
func TestBatcherFramesUnderMaxPayload(t *testing.T) {
	t.Parallel()
	const maxPayload = 2048
	url := runNATSMaxPayload(t, maxPayload)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	ch := make(chan *nats.Msg, 1024)
	if _, err := sub.ChanSubscribe(testIngest, ch); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	o := Options{Batch: BatchOptions{Linger: time.Hour}}
	o.setDefaults()
	be := &batcherEnv{b: newBatcher(corePub{nc: nc}, testIngest, "_INBOX.test", o.Batch, newGatewayMetrics(o.Metrics)),
		frames: &frameSub{t: t, ch: ch}, nc: nc}
	const n = 100
	if err := be.request(t, "m", n); err != nil {
		t.Fatalf("publishing %d events: %v", n, err)
	}
	got := 0
	for got < n {
		msg, evs := be.frames.next()
		if len(msg.Data) > maxPayload-frameHeaderRoom {
			t.Errorf("frame of %d bytes, max_payload %d", len(msg.Data), maxPayload)
		}
		got += len(evs)
	}
}

// TestPublishProblem: only a transient publish failure is 503 with
// Retry-After.
func TestPublishProblem(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		retry  bool
	}{
		{nats.ErrMaxPayload, http.StatusRequestEntityTooLarge, false},
		{fmt.Errorf("wrapped: %w", nats.ErrMaxPayload), http.StatusRequestEntityTooLarge, false},
		{nats.ErrBadSubject, http.StatusInternalServerError, false},
		{nats.ErrConnectionClosed, http.StatusServiceUnavailable, true},
		{nats.ErrReconnectBufExceeded, http.StatusServiceUnavailable, true},
		{errors.New("other"), http.StatusServiceUnavailable, true},
	} {
		p := publishProblem(tt.err)
		if p.Status != tt.status || (p.RetryAfter > 0) != tt.retry || !strings.Contains(p.Detail, tt.err.Error()) {
			t.Errorf("publishProblem(%v) = %+v; want %d, Retry-After %v", tt.err, p, tt.status, tt.retry)
		}
	}
}
