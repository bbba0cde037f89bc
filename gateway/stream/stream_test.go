package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// checkSeq checks that a quote event continues its symbol's sequence with
// no gap and no duplicate: the publisher's bid i is the symbol's i-th
// event, so bid == sluiceseq, and sluiceseq grows by 1 plus what the event
// replaced.
func checkSeq(t *testing.T, last map[string]float64, sym string, ev sseEvent) {
	t.Helper()
	seq, rep := ev.num("sluiceseq"), ev.num("sluicereplaced")
	if ev.bid() != seq {
		t.Fatalf("%s: bid %v carries sluiceseq %v", sym, ev.bid(), seq)
	}
	if prev, ok := last[sym]; ok && seq != prev+rep+1 {
		t.Fatalf("%s: sluiceseq %v after %v with %v replaced: a gap or a duplicate", sym, seq, prev, rep)
	}
	last[sym] = seq
}

func TestSnapshotThenLive(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t, stream.Options{})
			hc := client(p, 0)
			holder := openSSE(t, hc, e.base+"/v1/streams/quote?symbols=AAPL,MSFT")
			if ev := holder.mustNext(t); ev.event != stream.TypeSnapshotEnd || ev.num("snapshot") != 0 {
				t.Fatalf("first subscriber's first event %+v, want an empty snapshot's end", ev)
			}
			e.settle()
			for i := 1; i <= 5; i++ {
				e.publishQuote("AAPL", float64(i))
			}
			for i := 1; i <= 3; i++ {
				e.publishQuote("MSFT", float64(i))
			}
			e.flushPub()
			seen := map[string]float64{}
			for len(seen) < 2 || seen["AAPL"] < 5 || seen["MSFT"] < 3 {
				ev := holder.mustNext(t)
				seen[ev.data["subject"].(string)] = ev.bid()
			}
			// Live updates flow while the second subscriber registers.
			const n = 3000
			defer e.publishing(func(i int) bool {
				e.publishQuote("AAPL", float64(i+5))
				if i%100 == 0 {
					time.Sleep(time.Millisecond)
				}
				return i+5 < n
			})()
			s := openSSE(t, hc, e.base+"/v1/streams/quote?symbols=AAPL,MSFT")
			last := map[string]float64{}
			snap := 0
			for {
				ev := s.mustNext(t)
				if ev.event == stream.TypeSnapshotEnd {
					if got := ev.num("snapshot"); int(got) != snap || snap != 2 {
						t.Fatalf("marker says %v events, %d came before it, want 2", got, snap)
					}
					break
				}
				snap++
				if ev.event != "marketdata.quote.enriched.v1" || ev.id == "" {
					t.Fatalf("snapshot event %+v", ev)
				}
				sym := ev.data["subject"].(string)
				checkSeq(t, last, sym, ev)
			}
			if last["MSFT"] != 3 || last["AAPL"] < 5 {
				t.Fatalf("snapshot %v, want MSFT at 3 and AAPL at 5 or later", last)
			}
			for last["AAPL"] < n {
				ev := s.mustNext(t)
				checkSeq(t, last, ev.data["subject"].(string), ev)
			}
		})
	}
}

func TestSnapshotFalseNDJSON(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t, stream.Options{})
			ctx := t.Context()
			r, err := stream.Dial(ctx, client(p, 0), e.base, "trade", []string{"BRK.B"}, url.Values{"snapshot": {"false"}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			e.settle()
			for i := 1; i <= 3; i++ {
				e.publishTrade("BRK.B", int64(i))
			}
			e.flushPub()
			for i := 1; i <= 3; i++ {
				line, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				var ev struct {
					Type    string `json:"type"`
					Subject string `json:"subject"`
					Seq     int    `json:"sluiceseq"`
					Token   string `json:"sluicetoken"`
					Data    struct {
						Size int `json:"size"`
					} `json:"data"`
				}
				if err := json.Unmarshal(line, &ev); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if ev.Type != "marketdata.trade.enriched.v1" || ev.Subject != "BRK.B" || ev.Seq != i || ev.Data.Size != i || ev.Token == "" {
					t.Fatalf("event %d: %s", i, line)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, stream.Options{MaxSymbols: 3, MaxSubscribers: 1})
	foreign := stream.Token{Stream: "core:t.enriched.trade", Epoch: 1, Pos: 2}.String()
	own := stream.Token{Stream: "core:t.enriched.quote", Epoch: 1, Pos: 2}.String()
	for _, p := range protos {
		hc := client(p, 0)
		cases := []struct {
			path   string
			hdr    []string
			status int
		}{
			{"/v1/streams/order?symbols=A", nil, 404},
			{"/v1/streams/quote?symbols=A,B,C,D", nil, 400},
			{"/v1/streams/quote", nil, 400},
			{"/v1/streams/quote?symbols=A,*", nil, 400},
			{"/v1/streams/quote?symbols=A&since=yesterday", nil, 400},
			{"/v1/streams/quote?symbols=A&since_seq=-1", nil, 400},
			{"/v1/streams/quote?symbols=A&max_rate=0", nil, 400},
			{"/v1/streams/quote?symbols=A&snapshot=maybe", nil, 400},
			{"/v1/streams/quote?symbols=A&symbol=B", nil, 400},
			{"/v1/streams/quote?symbols=A", []string{"Last-Event-ID", "garbage"}, 400},
			{"/v1/streams/quote?symbols=A", []string{"Last-Event-ID", foreign}, 400},
			{"/v1/streams/quote?symbols=A", []string{"Last-Event-ID", own}, 409},
			{"/v1/streams/quote?symbols=A&since_seq=5", nil, 409},
			{"/v1/streams/quote?symbols=A&since=2026-01-02T15:04:05Z", nil, 409},
			{"/v1/streams/quote?symbols=A", []string{"Accept", "text/html"}, 406},
		}
		for _, c := range cases {
			t.Run(p.name+c.path, func(t *testing.T) {
				wantProblem(t, get(t, hc, e.base+c.path, c.hdr...), c.status)
			})
		}
		t.Run(p.name+"/fallback=snapshot", func(t *testing.T) {
			s := openSSE(t, hc, e.base+"/v1/streams/quote?symbols=A&fallback=snapshot", "Last-Event-ID", own)
			if ev := s.mustNext(t); ev.event != stream.TypeSnapshotEnd {
				t.Fatalf("got %+v, want the snapshot's end", ev)
			}
			// One subscriber at most: the next gets 503.
			wantProblem(t, get(t, hc, e.base+"/v1/streams/quote?symbols=A"), 503)
			s.resp.Body.Close()
			opstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
				if e.hub.Subscribers() != 0 {
					return errNotYet
				}
				return nil
			})
		})
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t, stream.Options{})
			hc := client(p, 0)
			s := openSSE(t, hc, e.base+"/v1/streams/quote?symbols=AAPL")
			s.mustNext(t)
			e.settle()
			e.publishQuote("AAPL", 1)
			e.flushPub()
			first := s.mustNext(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- e.srv.Shutdown(ctx) }()
			end := s.mustNext(t)
			if end.event != stream.TypeStreamEnd || end.data["reason"] != stream.EndShutdown || end.data["token"] != first.id || end.id != first.id {
				t.Fatalf("final event %+v, want a shutdown end naming %s", end, first.id)
			}
			if _, err := s.next(); err != io.EOF {
				t.Fatalf("after the final event: %v, want EOF", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("server shutdown: %v", err)
			}
			if err := e.hub.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConflation: a client reading slowly from a symbol updated about a
// thousand times a second sees the latest value and, in each event, how many
// it replaced; no update is unaccounted for.
func TestConflation(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			e := newEnvBuf(t, stream.Options{Buffer: 8}, 4096)
			s := openSSE(t, client(p, 4096), e.base+"/v1/streams/quote?symbols=FAST&snapshot=false")
			e.settle()
			const n = 3000
			var published atomic.Bool
			defer e.publishing(func(i int) bool {
				e.publishQuote("FAST", float64(i))
				time.Sleep(time.Millisecond)
				if i == n {
					published.Store(true)
				}
				return i < n
			})()
			last := map[string]float64{}
			events, replaced := 0, 0
			for last["FAST"] < n {
				ev := s.mustNext(t)
				checkSeq(t, last, "FAST", ev)
				events++
				replaced += int(ev.num("sluicereplaced"))
				if !published.Load() {
					time.Sleep(100 * time.Millisecond) // a slow reader while updates flow
				}
			}
			if events+replaced != n || replaced < n/10 {
				t.Fatalf("%d events delivered + %d replaced, want %d with some conflated", events, replaced, n)
			}
			t.Logf("%s: %d updates delivered as %d events (%d replaced)", p.name, n, events, replaced)
		})
	}
}

// TestSlowTradeSubscriberCut: trades are never conflated; a subscriber that
// falls behind on them by more than its buffer gets a final event with its
// resume token and is disconnected, while a fast one next to it gets every
// trade in order.
func TestSlowTradeSubscriberCut(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			// The slow reader waits for the fast one: no write timeout cuts it first.
			e := newEnvBuf(t, stream.Options{Buffer: 1024, WriteTimeout: time.Hour}, 4096)
			slow := openSSE(t, client(p, 4096), e.base+"/v1/streams/trade?symbols=*&snapshot=false")
			fast := openSSE(t, client(p, 0), e.base+"/v1/streams/trade?symbols=*&snapshot=false")
			e.settle()
			const n = 20000
			stop := e.publishing(func(i int) bool {
				e.publishTrade("X", int64(i))
				if i%10 == 0 {
					time.Sleep(2 * time.Millisecond)
				}
				return i < n
			})
			defer stop()
			for i := 1; i <= n; i++ {
				ev := fast.mustNext(t)
				if d, _ := ev.data["data"].(map[string]any); d == nil || int(d["size"].(float64)) != i || int(ev.num("sluiceseq")) != i {
					t.Fatalf("fast subscriber: trade %d is %+v", i, ev)
				}
			}
			var lastID string
			got := 0
			for {
				ev := slow.mustNext(t)
				if ev.event == stream.TypeStreamEnd {
					if ev.data["reason"] != stream.EndSlowConsumer || ev.data["token"] != lastID || ev.id != lastID {
						t.Fatalf("final event %+v, want slow_consumer naming %q", ev, lastID)
					}
					break
				}
				got++
				if int(ev.num("sluiceseq")) != got || ev.num("sluicereplaced") != 0 {
					t.Fatalf("slow subscriber: trade %d is %+v", got, ev)
				}
				lastID = ev.id
			}
			if _, err := slow.next(); err != io.EOF {
				t.Fatalf("after the final event: %v, want EOF", err)
			}
			if got >= n {
				t.Fatalf("the slow subscriber got all %d trades", got)
			}
			tok, err := stream.ParseToken(lastID)
			if err != nil || tok.Stream != "core:t.enriched.trade" || int(tok.Pos) != got {
				t.Fatalf("token %q: %+v %v", lastID, tok, err)
			}
			t.Logf("%s: the slow subscriber was cut after %d of %d trades", p.name, got, n)
		})
	}
}

func TestMaxRate(t *testing.T) {
	e := newEnv(t, stream.Options{})
	s := openSSE(t, client(protos[0], 0), e.base+"/v1/streams/quote?symbols=R&snapshot=false&max_rate=20")
	e.settle()
	const n = 500
	start := time.Now()
	defer e.publishing(func(i int) bool {
		e.publishQuote("R", float64(i))
		time.Sleep(time.Millisecond)
		return i < n
	})()
	last := map[string]float64{}
	events, replaced := 0, 0
	for last["R"] < n {
		ev := s.mustNext(t)
		checkSeq(t, last, "R", ev)
		events++
		replaced += int(ev.num("sluicereplaced"))
	}
	el := time.Since(start)
	if events+replaced != n || float64(events) > 20*el.Seconds()+2 {
		t.Fatalf("%d events (+%d replaced) in %v at max_rate=20", events, replaced, el)
	}
	t.Logf("%d updates in %v as %d events at max_rate=20", n, el, events)
}

func TestWildcardAndSymbolOverlap(t *testing.T) {
	e := newEnv(t, stream.Options{})
	hc := client(protos[1], 0)
	one := openSSE(t, hc, e.base+"/v1/streams/quote?symbols=A&snapshot=false")
	all := openSSE(t, hc, e.base+"/v1/streams/quote?symbols=*&snapshot=false")
	e.settle()
	const n = 1000
	for i := 1; i <= n; i++ {
		e.publishQuote("A", float64(i))
		e.publishQuote("B", float64(i))
	}
	e.flushPub()
	for _, s := range []*sse{one, all} {
		last := map[string]float64{}
		for last["A"] < n || (s == all && last["B"] < n) {
			ev := s.mustNext(t)
			checkSeq(t, last, ev.data["subject"].(string), ev)
		}
	}
}

func TestCurl(t *testing.T) {
	curl, err := lookCurl()
	if err != nil {
		t.Skip(err)
	}
	e := newEnv(t, stream.Options{})
	holder := openSSE(t, client(protos[0], 0), e.base+"/v1/streams/quote?symbols=C")
	holder.mustNext(t)
	e.settle()
	e.publishQuote("C", 1)
	e.flushPub()
	holder.mustNext(t)
	for _, args := range [][]string{{"--http1.1"}, {"--http2-prior-knowledge"}} {
		t.Run(args[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			out := runCurl(ctx, t, curl, append(args, "-N", "-s", "-H", "Accept: text/event-stream", e.base+"/v1/streams/quote?symbols=C"))
			var got []string
			for len(got) < 3 {
				line, err := out.ReadString('\n')
				if err != nil {
					t.Fatalf("curl: %v after %q", err, got)
				}
				if strings.HasPrefix(line, "event: ") {
					got = append(got, strings.TrimSpace(line[7:]))
					if len(got) == 2 {
						e.publishQuote("C", 2)
						e.flushPub()
					}
				}
			}
			want := []string{"marketdata.quote.enriched.v1", stream.TypeSnapshotEnd, "marketdata.quote.enriched.v1"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("curl saw %v, want %v", got, want)
			}
		})
	}
}

var _ = http.StatusOK
