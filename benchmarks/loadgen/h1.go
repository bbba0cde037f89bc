package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// connectH1 opens a connection of each transport with one request before
// the run.
func (g *gen) connectH1(ctx context.Context) error {
	u, err := url.Parse(g.cfg.Target + "/")
	if err != nil {
		return err
	}
	for _, rt := range g.rts {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return fmt.Errorf("loadgen: connecting to %s: %w", g.cfg.Target, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return nil
}

// runClosedH1 starts Streams goroutines per transport, each sending its
// next request as soon as the previous one is answered, until the window
// ends.
func (g *gen) runClosedH1(ctx context.Context, wg *sync.WaitGroup) {
	for c := range g.rts {
		for range g.cfg.Client.Streams {
			wg.Go(func() {
				w := g.newWorker(c)
				sheds := 0
				for ctx.Err() == nil {
					now := time.Now()
					if !now.Before(g.winEnd) {
						return
					}
					g.issued.Add(1)
					status, retryAfter := w.do(ticket{seq: g.seq.Add(1) - 1, intended: now, measured: g.measured(now)})
					if !g.cfg.Backoff.On() || classify(status) != classShed {
						sheds = 0
						continue
					}
					sheds++
					sleepUntil(ctx, time.Now().Add(g.cfg.Backoff.pause(sheds, retryAfter)))
				}
			})
		}
	}
}

// runOpenH1 starts Streams goroutines per transport, each sending the
// tickets it takes until the schedule is closed.
func (g *gen) runOpenH1(wg *sync.WaitGroup, tickets <-chan ticket) {
	for c := range g.rts {
		for range g.cfg.Client.Streams {
			wg.Go(func() {
				w := g.newWorker(c)
				for t := range tickets {
					w.do(t)
					g.finished()
				}
			})
		}
	}
}

// worker is one stream: it sends on its connection's transport and records
// into its connection's shard.
type worker struct {
	g   *gen
	rt  http.RoundTripper
	sh  *shard
	buf bytes.Buffer
}

func (g *gen) newWorker(c int) *worker {
	return &worker{g: g, rt: g.rts[c], sh: g.shards[c]}
}

// do sends one request, reads the whole answer and records it; it returns
// the answer's status (0 without one) and Retry-After (negative without
// one).
func (w *worker) do(t ticket) (status int, retryAfter time.Duration) {
	req, pl := w.g.cfg.Payloads.request(w.g.reqCtx, t.seq)
	resp, err := w.rt.RoundTrip(req)
	if err != nil {
		w.sh.recordError(t.measured, err)
		return 0, -1
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	lat := time.Since(t.intended)
	if err != nil {
		w.sh.recordError(t.measured, fmt.Errorf("reading the answer: %w", err))
		return 0, -1
	}
	w.sh.record(resp.StatusCode, lat, t.measured, pl.events)
	if w.g.collect && t.measured && resp.StatusCode == http.StatusAccepted {
		w.sh.mu.Lock()
		w.sh.ids.add(w.buf.Bytes(), pl)
		w.sh.mu.Unlock()
	}
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"))
}
