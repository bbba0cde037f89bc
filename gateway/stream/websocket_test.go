package stream_test

import (
	"encoding/json"
	"testing"

	"github.com/coder/websocket"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/schemas"
)

// TestWebSocket reads a stream with coder/websocket's client, JSON text
// frames by default and MessagePack binary frames with the msgpack
// subprotocol: the snapshot, its end, then live events.
func TestWebSocket(t *testing.T) {
	e := newEnv(t, stream.Options{})
	holder := openSSE(t, client(protos[0], 0), e.base+"/v1/streams/quote?symbols=W")
	holder.mustNext(t)
	e.settle()
	e.publishQuote("W", 1)
	e.flushPub()
	holder.mustNext(t)
	n := 1.0
	for _, sp := range []string{"", stream.SubprotocolJSON, stream.SubprotocolMsgpack} {
		t.Run("subprotocol="+sp, func(t *testing.T) {
			ctx := t.Context()
			var o websocket.DialOptions
			if sp != "" {
				o.Subprotocols = []string{sp}
			}
			c, _, err := websocket.Dial(ctx, "ws"+e.base[4:]+"/v1/streams/quote?symbols=W", &o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			read := func() map[string]any {
				t.Helper()
				typ, b, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				m := map[string]any{}
				if sp == stream.SubprotocolMsgpack {
					if typ != websocket.MessageBinary {
						t.Fatalf("frame type %v, want binary", typ)
					}
					js, err := schemas.AppendEventJSON(nil, b)
					if err != nil {
						t.Fatal(err)
					}
					b = js
				} else if typ != websocket.MessageText {
					t.Fatalf("frame type %v, want text", typ)
				}
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("%s: %v", b, err)
				}
				return m
			}
			if m := read(); m["subject"] != "W" || m["sluiceseq"] != n || m["sluicetoken"] == "" {
				t.Fatalf("snapshot %v", m)
			}
			if m := read(); m["type"] != stream.TypeSnapshotEnd || m["snapshot"] != float64(1) {
				t.Fatalf("marker %v", m)
			}
			e.settle()
			n++
			e.publishQuote("W", n)
			e.flushPub()
			holder.mustNext(t)
			if m := read(); m["sluiceseq"] != n || m["data"].(map[string]any)["bid"] != n {
				t.Fatalf("live %v", m)
			}
		})
	}
}

// TestWebSocketDurableResume: a WebSocket subscriber resumes from a
// durable token (last_event_id, as a browser's WebSocket cannot set
// Last-Event-ID) and gets the trades after it, then live ones.
func TestWebSocketDurableResume(t *testing.T) {
	e, st := newDurableEnv(t, stream.Options{})
	for i := 1; i <= 3; i++ {
		e.publishTrade("W", int64(i))
	}
	e.flushPub()
	waitStored(t, st, 3)
	ctx := t.Context()
	tok := stream.Token{Stream: bus.EnrichedStream(e.subjects) + "/trade", Pos: 1}.String()
	c, _, err := websocket.Dial(ctx, "ws"+e.base[4:]+"/v1/streams/trade?symbols=W&last_event_id="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for want := 2; want <= 4; want++ {
		if want == 4 {
			e.publishTrade("W", 4)
			e.flushPub()
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Data struct {
				Size int `json:"size"`
			} `json:"data"`
			Token string `json:"sluicetoken"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Data.Size != want || m.Token == "" {
			t.Fatalf("%s (%v), want trade %d with a token", b, err, want)
		}
	}
}
