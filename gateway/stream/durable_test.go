package stream_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// newDurableEnv is an env whose hub serves both types from the enriched
// stream (bus.Apply, every type durable); events published on the enriched
// subjects are stored there, as the workers' are.
func newDurableEnv(t *testing.T, o stream.Options) (*env, jetstream.Stream) {
	t.Helper()
	return newDurableEnvModes(t, o, bus.AllModes(bus.ModeDurable))
}

// newDurableEnvModes is newDurableEnv with each type's mode from modes.
func newDurableEnvModes(t *testing.T, o stream.Options, modes bus.Modes) (*env, jetstream.Stream) {
	t.Helper()
	var st jetstream.Stream
	e := newEnvWith(t, o, 0, func(nc *nats.Conn, o *stream.Options) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Apply(ctx, js, o.Subjects, bus.StreamOptions{Delivery: modes, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		if st, err = js.Stream(ctx, bus.EnrichedStream(o.Subjects)); err != nil {
			t.Fatal(err)
		}
		r, err := stream.NewJetStream(nc, o.Subjects, modes)
		if err != nil {
			t.Fatal(err)
		}
		o.Replayer = r
	})
	return e, st
}

// waitStored waits until the enriched stream holds n events.
func waitStored(t *testing.T, st jetstream.Stream, n uint64) {
	t.Helper()
	opstest.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
		info, err := st.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs < n {
			return fmt.Errorf("%d events stored, want %d", info.State.Msgs, n)
		}
		return nil
	})
}

// tradeChecker checks that each symbol's trades arrive exactly once and in
// order (the publisher's size i is the symbol's i-th trade), and that the
// stream positions of the events (their resume tokens) increase.
type tradeChecker struct {
	t    *testing.T
	last map[string]float64
	pos  uint64
	seen int
}

func newTradeChecker(t *testing.T) *tradeChecker {
	return &tradeChecker{t: t, last: map[string]float64{}}
}

// check takes one event; contiguous says the symbol's previous size must
// be one less (false for the first event after a snapshot's gap).
func (c *tradeChecker) check(ev sseEvent) {
	c.t.Helper()
	if ev.event != schemas.TypeTradeEnrichedV1 {
		c.t.Fatalf("event %q, want a trade: %+v", ev.event, ev)
	}
	tok, err := stream.ParseToken(ev.id)
	if err != nil {
		c.t.Fatal(err)
	}
	if tok.Pos <= c.pos {
		c.t.Fatalf("position %d after %d: positions must increase", tok.Pos, c.pos)
	}
	c.pos = tok.Pos
	sym := ev.data["subject"].(string)
	d, _ := ev.data["data"].(map[string]any)
	size, _ := d["size"].(float64)
	if prev, ok := c.last[sym]; ok && size != prev+1 {
		c.t.Fatalf("%s: trade %v after %v: a gap or a duplicate", sym, size, prev)
	}
	c.last[sym] = size
	c.seen++
}

func (c *tradeChecker) done(n float64) bool {
	for _, sym := range []string{"A", "B"} {
		if c.last[sym] < n {
			return false
		}
	}
	return true
}

func TestDurableSnapshotThenLive(t *testing.T) {
	for _, mode := range []struct {
		name  string
		cache int // CacheSymbols: 1 evicts, and snapshots come from the stream
	}{{"cache", 0}, {"stream", 1}} {
		for _, p := range protos {
			t.Run(mode.name+"/"+p.name, func(t *testing.T) {
				e, st := newDurableEnv(t, stream.Options{CacheSymbols: mode.cache, Buffer: 1 << 16})
				for i := 1; i <= 5; i++ {
					e.publishTrade("A", int64(i))
				}
				for i := 1; i <= 3; i++ {
					e.publishTrade("B", int64(i))
				}
				e.publishTrade("C", 1)
				e.flushPub()
				waitStored(t, st, 9)
				hc := client(p, 0)
				first := openSSE(t, hc, e.base+"/v1/streams/trade?symbols=A,B")
				// The last of each symbol, in stream order, then the marker.
				for _, want := range []struct {
					sym  string
					size float64
					pos  uint64
				}{{"A", 5, 5}, {"B", 3, 8}} {
					ev := first.mustNext(t)
					d, _ := ev.data["data"].(map[string]any)
					tok, err := stream.ParseToken(ev.id)
					if err != nil || ev.data["subject"] != want.sym || d["size"] != want.size || tok.Pos != want.pos || ev.num("sluiceseq") != 1 {
						t.Fatalf("snapshot event %+v (token %+v, %v), want %s size %v at %d", ev, tok, err, want.sym, want.size, want.pos)
					}
				}
				if ev := first.mustNext(t); ev.event != stream.TypeSnapshotEnd || ev.num("snapshot") != 2 {
					t.Fatalf("%+v, want the end of a snapshot of 2", ev)
				}

				// A second subscriber comes while trades flow: its snapshot
				// and the live trades after it have no gap and no duplicate.
				const n = 1500
				stop := e.publishing(func(i int) bool {
					e.publishTrade("A", int64(i+5))
					e.publishTrade("B", int64(i+3))
					if i%100 == 0 {
						e.flushPub()
					}
					return i+5 < n
				})
				defer stop()
				c := newTradeChecker(t)
				for c.seen < 10 {
					c.check(first.mustNext(t))
				}
				second := openSSE(t, hc, e.base+"/v1/streams/trade?symbols=A,B")
				c2 := newTradeChecker(t)
				marked := false
				for !marked || !c2.done(n-2) {
					ev := second.mustNext(t)
					if ev.event == stream.TypeSnapshotEnd {
						if marked || ev.num("snapshot") != 2 {
							t.Fatalf("%+v: a second marker, or not a snapshot of 2", ev)
						}
						marked = true
						continue
					}
					c2.check(ev)
				}
				if !marked {
					t.Fatal("no snapshot end marker")
				}
				for !c.done(n - 2) {
					c.check(first.mustNext(t))
				}
			})
		}
	}
}

func TestDurableResume(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			e, st := newDurableEnv(t, stream.Options{Buffer: 1 << 16})
			hc := client(p, 0)
			const n = 2000
			// Registered before the first trade: it sees them all.
			s := openSSE(t, hc, e.base+"/v1/streams/trade?symbols=A,B&snapshot=false")
			stop := e.publishing(func(i int) bool {
				e.publishTrade("A", int64(i))
				e.publishTrade("B", int64(i))
				if i%100 == 0 {
					e.flushPub()
				}
				return i < n
			})
			defer stop()
			c := newTradeChecker(t)
			var last string
			for c.seen < 300 {
				ev := s.mustNext(t)
				c.check(ev)
				last = ev.id
			}
			// Disconnect while trades flow, then resume with the last id
			// several times: every trade exactly once, in order.
			rounds := 0
			for ; !c.done(n); rounds++ {
				s.resp.Body.Close()
				s = openSSE(t, hc, e.base+"/v1/streams/trade?symbols=A,B", "Last-Event-ID", last)
				for k := 0; k < 500 && !c.done(n); k++ {
					ev := s.mustNext(t)
					c.check(ev)
					last = ev.id
				}
			}
			if c.seen != 2*n {
				t.Fatalf("%d trades over %d resumes, want %d", c.seen, rounds, 2*n)
			}
			stop()
			waitStored(t, st, 2*n)

			// since_seq=1 and a since before the first trade replay all.
			for _, q := range []string{"since_seq=1", "since=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339))} {
				all := newTradeChecker(t)
				s := openSSE(t, hc, e.base+"/v1/streams/trade?symbols=A,B&"+q)
				for !all.done(n) {
					all.check(s.mustNext(t))
				}
				if all.seen != 2*n {
					t.Fatalf("%s: %d trades, want %d", q, all.seen, 2*n)
				}
				s.resp.Body.Close()
			}
		})
	}
}

func TestDurableBadResume(t *testing.T) {
	e, st := newDurableEnv(t, stream.Options{})
	for i := 1; i <= 3; i++ {
		e.publishTrade("A", int64(i))
	}
	e.flushPub()
	waitStored(t, st, 3)
	name := bus.EnrichedStream(e.subjects) + "/trade"
	tok := func(stream_ string, pos uint64) string { return stream.Token{Stream: stream_, Pos: pos}.String() }
	hc := client(protos[0], 0)
	u := e.base + "/v1/streams/trade?symbols=A"
	for _, c := range []struct {
		name, query, lastID string
		status              int
	}{
		{"garbage token", "", "1.x", http.StatusBadRequest},
		{"core token", "", tok("core:t.enriched.trade", 1), http.StatusBadRequest},
		{"other type", "", tok(bus.EnrichedStream(e.subjects)+"/quote", 1), http.StatusBadRequest},
		{"past the end", "", tok(name, 4), http.StatusBadRequest},
		{"since_seq past the end", "&since_seq=5", "", http.StatusBadRequest},
		{"bad since", "&since=yesterday", "", http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.lastID != "" {
				hdr = []string{"Last-Event-ID", c.lastID}
			}
			wantProblem(t, get(t, hc, u+c.query, append([]string{"Accept", "text/event-stream"}, hdr...)...), c.status)
		})
	}
	// A position the stream no longer holds is gone (410), or a snapshot
	// with fallback=snapshot.
	if err := st.Purge(context.Background(), jetstream.WithPurgeKeep(1)); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, get(t, hc, u, "Accept", "text/event-stream", "Last-Event-ID", tok(name, 1)), http.StatusGone)
	s := openSSE(t, hc, u+"&fallback=snapshot", "Last-Event-ID", tok(name, 1))
	if ev := s.mustNext(t); ev.data["subject"] != "A" || ev.data["data"].(map[string]any)["size"] != 3.0 {
		t.Fatalf("%+v, want the snapshot's A 3", ev)
	}
	if ev := s.mustNext(t); ev.event != stream.TypeSnapshotEnd {
		t.Fatalf("%+v, want the snapshot's end", ev)
	}
	// A resume from the last position the stream holds is fine.
	s = openSSE(t, hc, u, "Last-Event-ID", tok(name, 2))
	if ev := s.mustNext(t); ev.data["data"].(map[string]any)["size"] != 3.0 {
		t.Fatalf("%+v, want A 3", ev)
	}
}

// TestDurableAllSymbols: symbols=* gets the last event of every stored
// symbol in stream order, from the cache or (evicting cache) the stream,
// and a resume of symbols=* replays every symbol.
func TestDurableAllSymbols(t *testing.T) {
	for _, mode := range []struct {
		name  string
		cache int
	}{{"cache", 0}, {"stream", 1}} {
		t.Run(mode.name, func(t *testing.T) {
			e, st := newDurableEnv(t, stream.Options{CacheSymbols: mode.cache})
			for _, sym := range []string{"A", "B", "C", "A"} {
				e.publishTrade(sym, 1)
			}
			e.flushPub()
			waitStored(t, st, 4)
			hc := client(protos[1], 0)
			s := openSSE(t, hc, e.base+"/v1/streams/trade?symbols=*")
			var got []string
			for {
				ev := s.mustNext(t)
				if ev.event == stream.TypeSnapshotEnd {
					if ev.num("snapshot") != 3 {
						t.Fatalf("%+v, want a snapshot of 3", ev)
					}
					break
				}
				tok, _ := stream.ParseToken(ev.id)
				got = append(got, fmt.Sprintf("%v@%d", ev.data["subject"], tok.Pos))
			}
			if fmt.Sprint(got) != "[B@2 C@3 A@4]" {
				t.Fatalf("snapshot %v, want [B@2 C@3 A@4]", got)
			}
			e.publishTrade("D", 1)
			e.flushPub()
			if ev := s.mustNext(t); ev.data["subject"] != "D" {
				t.Fatalf("live %+v, want D", ev)
			}
			r := openSSE(t, hc, e.base+"/v1/streams/trade?symbols=*&since_seq=2")
			for _, want := range []string{"B", "C", "A", "D"} {
				if ev := r.mustNext(t); ev.data["subject"] != want {
					t.Fatalf("replayed %+v, want %s", ev, want)
				}
			}
		})
	}
}

// TestDurablePerType: with quotes core and trades durable, a quote resume
// is refused as in core mode (409) while a trade resume replays.
func TestDurablePerType(t *testing.T) {
	modes := bus.AllModes(bus.ModeDurable)
	modes[schemas.KindQuote] = bus.ModeCore
	e, st := newDurableEnvModes(t, stream.Options{}, modes)
	e.publishTrade("A", 1)
	e.flushPub()
	waitStored(t, st, 1)
	hc := client(protos[0], 0)
	wantProblem(t, get(t, hc, e.base+"/v1/streams/quote?symbols=A&since_seq=1", "Accept", "text/event-stream"), http.StatusConflict)
	s := openSSE(t, hc, e.base+"/v1/streams/trade?symbols=A&since_seq=1")
	if ev := s.mustNext(t); ev.data["subject"] != "A" {
		t.Fatalf("%+v, want trade A", ev)
	}
}
