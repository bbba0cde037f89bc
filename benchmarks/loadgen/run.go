package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Mode is how a run paces its requests.
type Mode string

// The modes of [Config].
const (
	// Closed keeps Conns x Streams requests in flight: each request is sent
	// when the previous one on its stream is answered. It finds the maximum
	// rate; latency is measured from the actual send.
	Closed Mode = "closed"
	// Open sends requests at Rate per second whatever the server does;
	// latency is measured from each request's intended send time.
	Open Mode = "open"
)

// Config describes one run.
type Config struct {
	// Target is the server's base URL, as "http://127.0.0.1:8080".
	Target string
	// Client shapes the connections.
	Client ClientOptions
	// Payloads are the requests.
	Payloads *Payloads
	// Mode is [Closed] or [Open]; default Closed.
	Mode Mode
	// Rate is the offered rate of an open-loop run, requests per second.
	Rate float64
	// Backoff makes a closed-loop stream whose request was refused (429,
	// 503) wait before its next one; the zero value sends it at once. An
	// open-loop run ignores it.
	Backoff Backoff
	// MaxInFlight bounds the requests in flight of an open-loop run; a
	// request scheduled past it is dropped by the generator and counted.
	// Default Conns x Streams (every stream busy).
	MaxInFlight int
	// Warmup runs before the measured window and is not counted.
	Warmup time.Duration
	// Duration is the measured window.
	Duration time.Duration
	// DrainTimeout bounds the wait for requests still in flight after the
	// window; those still unanswered then are cancelled and counted as
	// errors. Default 10 s.
	DrainTimeout time.Duration
	// Observer, when set, matches the ids of accepted events with what it
	// sees on NATS; the run starts it and waits for the pipeline to settle.
	Observer *Observer
	// SettleQuiet and SettleMax bound that wait: until every sampled id has
	// been seen, or no message for SettleQuiet (default 1 s), at most
	// SettleMax (default 10 s).
	SettleQuiet, SettleMax time.Duration
	// OnWindow is called when the measured window starts (true) and ends
	// (false), for example to read the CPU time of processes.
	OnWindow func(start bool)
	// Label names the run in the progress line.
	Label string
	// Progress receives a line every second while the run lasts; nil is
	// quiet.
	Progress io.Writer
}

// Result is the outcome of a run's measured window.
type Result struct {
	Label    string        `json:"label"`
	Mode     Mode          `json:"mode"`
	Proto    Proto         `json:"proto"`
	Conns    int           `json:"conns"`
	Streams  int           `json:"streams"`
	Batch    int           `json:"events_per_request"`
	Duration time.Duration `json:"duration_ns"`
	// Rate is the configured offered rate of an open-loop run.
	Rate float64 `json:"rate,omitempty"`
	// Scheduled is the number of requests whose intended send time fell in
	// the window (open loop); Dropped of them were not sent because
	// MaxInFlight were already in flight.
	Scheduled uint64 `json:"scheduled,omitempty"`
	Dropped   uint64 `json:"dropped_by_generator"`
	// Retried counts the HTTP/2 requests sent again because the server
	// refused their stream (REFUSED_STREAM) or ended the connection before
	// processing them (GOAWAY), and GoAways the GOAWAY frames received; a
	// retried request's latency counts from its first send.
	Retried uint64 `json:"retried,omitempty"`
	GoAways uint64 `json:"goaways,omitempty"`
	// Answered counts good answers (2xx, and 422 for an invalid event);
	// Events is the number of events they carried.
	Answered uint64 `json:"answered"`
	Events   uint64 `json:"events"`
	// Errors are requests without an answer (connection errors, or still
	// unanswered after DrainTimeout); ErrorKinds counts a few of their
	// messages.
	Errors     uint64            `json:"errors"`
	ErrorKinds map[string]uint64 `json:"error_kinds,omitempty"`
	// Status counts every answer by status.
	Status map[int]uint64 `json:"status"`
	// ReqPerSec and EventsPerSec are Answered and Events per second of the
	// window.
	ReqPerSec    float64 `json:"req_per_sec"`
	EventsPerSec float64 `json:"events_per_sec"`
	// OfferedPerSec is Scheduled per second (open loop).
	OfferedPerSec float64 `json:"offered_per_sec,omitempty"`
	// Latency is that of the good answers; Shed that of 429 and 503
	// answers.
	Latency Latency `json:"latency"`
	Shed    Latency `json:"shed_latency"`
	// E2E is set when the run had an Observer.
	E2E *E2E `json:"e2e,omitempty"`
	// Hist and ShedHist are the merged histograms (microseconds).
	Hist     *hdrhistogram.Histogram `json:"-"`
	ShedHist *hdrhistogram.Histogram `json:"-"`
}

// ticket is one scheduled request.
type ticket struct {
	seq      uint64
	intended time.Time
	measured bool
	tries    int // times the server refused it or did not process it
	// sheds counts the 429 and 503 answers in a row to the requests its
	// stream sent before it (closed loop with [Backoff]).
	sheds int
}

// gen is one run in progress. Over HTTP/1.1 it sends through net/http's
// client, one goroutine per request in flight (rts); over HTTP/2 through
// its own framer client, one or two goroutines per connection (lanes).
type gen struct {
	cfg      Config
	rts      []*http.Transport
	h2       *h2Target
	lanes    []*h2Lane
	shards   []*shard
	ctx      context.Context // the run's: its end stops new requests
	reqCtx   context.Context // the requests': cancelled by the drain timeout
	collect  bool
	retried  atomic.Uint64
	goaways  atomic.Uint64
	inflight atomic.Int64
	issued   atomic.Uint64 // requests sent or dropped, for the progress line
	seq      atomic.Uint64
	sched    atomic.Uint64
	dropped  atomic.Uint64
	winStart time.Time
	winEnd   time.Time
}

// Run performs one run and returns its measured window. It returns an error
// only when the run could not start; failed requests are counted in the
// result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	g, err := newGen(cfg)
	if err != nil {
		return nil, err
	}
	defer CloseTransports(g.rts)
	// The generator allocates per request; fewer collections leave more of
	// the machine to the server under test.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	g.ctx, g.reqCtx = ctx, reqCtx
	if err := g.connect(ctx); err != nil {
		return nil, err
	}
	if cfg.Observer != nil {
		cfg.Observer.Start()
	}
	start := time.Now()
	g.winStart = start.Add(cfg.Warmup)
	g.winEnd = g.winStart.Add(cfg.Duration)
	stopProgress := g.progress(start)
	windowDone := g.windowHooks(ctx)
	var wg sync.WaitGroup
	if cfg.Mode == Open {
		g.runOpen(ctx, &wg)
	} else {
		g.runClosed(ctx, &wg)
	}
	g.drain(&wg, cancelReqs)
	<-windowDone
	stopProgress()
	res := g.result()
	if cfg.Observer != nil {
		e := cfg.Observer.settle(ctx, g.ids(), cfg.SettleQuiet, cfg.SettleMax)
		res.E2E = &e
	}
	return res, ctx.Err()
}

func newGen(cfg Config) (*gen, error) {
	cfg.Client.setDefaults()
	if cfg.Mode == "" {
		cfg.Mode = Closed
	}
	if cfg.Payloads == nil {
		return nil, errors.New("loadgen: no payloads")
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("loadgen: the measured window must be positive")
	}
	if cfg.Mode == Open && cfg.Rate <= 0 {
		return nil, errors.New("loadgen: an open-loop run needs a positive rate")
	}
	if cfg.Mode == Open {
		cfg.Backoff = Backoff{} // an offered rate holds whatever the answers
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = cfg.Client.Conns * cfg.Client.Streams
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.SettleQuiet <= 0 {
		cfg.SettleQuiet = time.Second
	}
	if cfg.SettleMax <= 0 {
		cfg.SettleMax = 10 * time.Second
	}
	if err := cfg.Payloads.Bind(cfg.Target); err != nil {
		return nil, err
	}
	g := &gen{cfg: cfg, collect: cfg.Observer != nil}
	if cfg.Client.Proto == ProtoH1 {
		rts, err := NewTransports(cfg.Client)
		if err != nil {
			return nil, err
		}
		g.rts = rts
	} else {
		tg, err := newH2Target(&cfg)
		if err != nil {
			return nil, err
		}
		g.h2 = tg
	}
	for range cfg.Client.Conns {
		sh := newShard()
		g.shards = append(g.shards, sh)
		if g.h2 != nil {
			g.lanes = append(g.lanes, &h2Lane{g: g, sh: sh})
		}
	}
	return g, nil
}

// connect opens every connection before the run.
func (g *gen) connect(ctx context.Context) error {
	if g.h2 == nil {
		return g.connectH1(ctx)
	}
	for i, l := range g.lanes {
		c, err := dialH2(ctx, l)
		if err != nil {
			for _, l := range g.lanes[:i] {
				_ = l.conn.nc.Close()
			}
			return fmt.Errorf("loadgen: connecting to %s: %w", g.cfg.Target, err)
		}
		l.conn = c
	}
	return nil
}

// windowHooks calls OnWindow at the window's start and end; the returned
// channel closes after the end call.
func (g *gen) windowHooks(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !sleepUntil(ctx, g.winStart) {
			return
		}
		if g.cfg.OnWindow != nil {
			g.cfg.OnWindow(true)
		}
		sleepUntil(ctx, g.winEnd)
		if g.cfg.OnWindow != nil {
			g.cfg.OnWindow(false)
		}
	}()
	return done
}

// sleepUntil waits for t or ctx and reports whether t was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *gen) measured(t time.Time) bool { return !t.Before(g.winStart) && t.Before(g.winEnd) }

// runOver tells whether a closed-loop run issues no request at now.
func (g *gen) runOver(now time.Time) bool { return !now.Before(g.winEnd) || g.ctx.Err() != nil }

// finished counts a request out of the open-loop in-flight bound.
func (g *gen) finished() {
	if g.cfg.Mode == Open {
		g.inflight.Add(-1)
	}
}

// runClosed keeps Streams requests in flight per connection, each sent as
// soon as the previous one is answered, until the window ends.
func (g *gen) runClosed(ctx context.Context, wg *sync.WaitGroup) {
	if g.h2 == nil {
		g.runClosedH1(ctx, wg)
		return
	}
	for _, l := range g.lanes {
		wg.Go(l.run)
	}
}

// runOpen starts the connections' senders and schedules requests at Rate;
// it returns when the schedule is done and the senders are told to finish.
func (g *gen) runOpen(ctx context.Context, wg *sync.WaitGroup) {
	tickets := make(chan ticket, g.cfg.MaxInFlight)
	if g.h2 == nil {
		g.runOpenH1(wg, tickets)
	}
	for _, l := range g.lanes {
		l.tickets = tickets
		wg.Go(l.run)
	}
	g.schedule(ctx, tickets)
	close(tickets)
}

// schedule issues request i at start + i/rate. When the process falls behind
// (a sleep that overslept, a busy CPU), every request already due is issued
// at once, each keeping its own intended time, so the rate holds on average
// and the lateness shows in the latency.
func (g *gen) schedule(ctx context.Context, tickets chan<- ticket) {
	rate := g.cfg.Rate
	start := g.winStart.Add(-g.cfg.Warmup)
	total := uint64((g.cfg.Warmup + g.cfg.Duration).Seconds() * rate)
	max := int64(g.cfg.MaxInFlight)
	at := func(i uint64) time.Time { return start.Add(time.Duration(float64(i) * 1e9 / rate)) }
	for i := uint64(0); i < total && ctx.Err() == nil; {
		due := uint64(time.Since(start).Seconds()*rate) + 1
		for ; i < due && i < total; i++ {
			t := ticket{seq: i, intended: at(i)}
			t.measured = g.measured(t.intended)
			if t.measured {
				g.sched.Add(1)
			}
			g.issued.Add(1)
			if g.inflight.Load() >= max {
				if t.measured {
					g.dropped.Add(1)
				}
				continue
			}
			g.inflight.Add(1)
			tickets <- t
		}
		if i < total {
			sleepUntil(ctx, at(i))
		}
	}
}

// drain waits for the goroutines; DrainTimeout after the window's end it
// cancels the requests still in flight.
func (g *gen) drain(wg *sync.WaitGroup, cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Until(g.winEnd) + g.cfg.DrainTimeout):
		cancel()
		<-done
	}
}

// result merges the shards.
func (g *gen) result() *Result {
	cfg := g.cfg
	r := &Result{Label: cfg.Label, Mode: cfg.Mode, Proto: cfg.Client.Proto, Conns: cfg.Client.Conns,
		Streams: cfg.Client.Streams, Batch: cfg.Payloads.opts.Batch, Duration: cfg.Duration,
		Status: map[int]uint64{}, Dropped: g.dropped.Load(), Retried: g.retried.Load(), GoAways: g.goaways.Load()}
	if cfg.Mode == Open {
		r.Rate = cfg.Rate
		r.Scheduled = g.sched.Load()
		r.OfferedPerSec = float64(r.Scheduled) / cfg.Duration.Seconds()
	}
	var good, shed []*hdrhistogram.Histogram
	for _, s := range g.shards {
		s.mu.Lock()
		good, shed = append(good, s.good), append(shed, s.shed)
		r.Status = AddCounts(r.Status, s.status)
		r.Errors += s.errs
		r.ErrorKinds = AddCounts(r.ErrorKinds, s.errKinds)
		r.Answered += s.answered
		r.Events += s.events
		s.mu.Unlock()
	}
	r.Hist, r.ShedHist = MergeHistograms(good...), MergeHistograms(shed...)
	r.Latency, r.Shed = Summarize(r.Hist), Summarize(r.ShedHist)
	secs := cfg.Duration.Seconds()
	r.ReqPerSec = float64(r.Answered) / secs
	r.EventsPerSec = float64(r.Events) / secs
	return r
}

func (g *gen) ids() *idSample {
	var all idSample
	for _, s := range g.shards {
		s.mu.Lock()
		all.merge(&s.ids)
		s.mu.Unlock()
	}
	return &all
}

// String is a one-line summary of r.
func (r *Result) String() string {
	return fmt.Sprintf("%s: %.0f req/s, %.0f events/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, errors %d, dropped %d",
		r.Label, r.ReqPerSec, r.EventsPerSec, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Errors, r.Dropped)
}
