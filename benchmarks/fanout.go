package benchmarks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"

	"github.com/sluice-dev/sluice/schemas"
)

// The subscriber scenarios (issue #13): fan-out to HTTP subscribers against
// the same subscribers on NATS, and one slow subscriber among fast ones.
const (
	ScenarioFanout       = "fanout"
	ScenarioSlowConsumer = "slow-consumer"
)

func init() { Scenarios = append(Scenarios, ScenarioFanout, ScenarioSlowConsumer) }

// The subscribers' load: quotes of fanoutSymbols symbols, each updated
// fanoutRate times a second, published as enriched events on NATS (no
// workers: the scenario measures the way out); each subscriber names
// fanoutPerSub symbols, so it is owed fanoutPerSub × fanoutRate events/s.
const (
	fanoutSymbols = 100
	fanoutPerSub  = 10
	fanoutRate    = 10
	fanoutPrefix  = "fanout"
)

// fanoutCounts are the subscriber counts of the fanout scenario.
var fanoutCounts = []int{100, 1000}

// fanoutRun is one measured window of N subscribers.
type fanoutRun struct {
	label     string
	subs      int
	owed      float64 // events/s the subscribers are owed
	delivered float64 // events/s they received
	p50, p99  float64 // ms from publish to receipt
	gwCPU     float64 // µs of gateway CPU per delivered event
	natsCPU   float64 // µs of NATS server CPU per delivered event
	memPerSub float64 // bytes of gateway RSS per idle subscriber
	cut       int64   // streams that ended before the window did
}

func (r fanoutRun) String() string {
	s := fmt.Sprintf("%s, %d subscribers: %.0f events/s delivered of %.0f owed, p50 %.2f ms, p99 %.2f ms, NATS CPU %.2f µs/event",
		r.label, r.subs, r.delivered, r.owed, r.p50, r.p99, r.natsCPU)
	if r.gwCPU > 0 {
		s += fmt.Sprintf(", gateway CPU %.2f µs/event", r.gwCPU)
	}
	if r.memPerSub > 0 {
		s += fmt.Sprintf(", gateway memory %.1f KiB per idle subscriber", r.memPerSub/1024)
	}
	if r.cut > 0 {
		s += fmt.Sprintf(", %d streams ended early", r.cut)
	}
	return s
}

// fanoutSymbolsOf returns subscriber i's symbols.
func fanoutSymbolsOf(i int) []string {
	out := make([]string, fanoutPerSub)
	for k := range out {
		out[k] = fanoutSymbol((i*fanoutPerSub + k) % fanoutSymbols)
	}
	return out
}

func fanoutSymbol(i int) string { return fmt.Sprintf("S%03d", i) }

// latencies is a latency histogram and an event count that many goroutines
// record into while on is set.
type latencies struct {
	on     atomic.Bool
	mu     sync.Mutex
	h      *hdrhistogram.Histogram
	events atomic.Int64
	ended  atomic.Int64
}

func newLatencies() *latencies {
	return &latencies{h: hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)}
}

// record takes one event published at ns (Unix nanoseconds).
func (l *latencies) record(ns int64) {
	if !l.on.Load() || ns == 0 {
		return
	}
	d := max((time.Now().UnixNano()-ns)/1e3, 1)
	l.events.Add(1)
	l.mu.Lock()
	_ = l.h.RecordValue(d)
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.h.Reset()
	l.mu.Unlock()
	l.events.Store(0)
	l.ended.Store(0)
}

func (l *latencies) quantile(q float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return float64(l.h.ValueAtQuantile(q)) / 1e3
}

// quotePublisher publishes the scenario's quotes at their fixed rate until
// stopped.
type quotePublisher struct {
	nc   *nats.Conn
	subj schemas.Subjects
	stop chan struct{}
	done chan struct{}
}

func startQuotes(nc *nats.Conn, subj schemas.Subjects) *quotePublisher {
	p := &quotePublisher{nc: nc, subj: subj, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *quotePublisher) run() {
	defer close(p.done)
	// Paced by the clock, not by ticks: a tick the loaded machine skips
	// is caught up on the next, so the rate holds on average.
	const tick = 10 * time.Millisecond
	const rate = fanoutSymbols * fanoutRate
	start := time.Now()
	sent := 0
	t := time.NewTicker(tick)
	defer t.Stop()
	subjects := make([]string, fanoutSymbols)
	for i := range subjects {
		subjects[i] = p.subj.Enriched(schemas.KindQuote, fanoutSymbol(i))
	}
	var buf []byte
	next := 0
	for n := 1; ; n++ {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		for due := int(time.Since(start).Seconds() * rate); sent < due; sent++ {
			sym := fanoutSymbol(next)
			ev := schemas.Enriched{ID: fmt.Sprintf("%d", n), Source: "/bench/fanout", Type: schemas.TypeQuoteEnrichedV1,
				Subject: sym, Time: time.Now().UnixNano(), Kind: schemas.KindQuote}
			ev.Quote.Quote = schemas.Quote{Symbol: sym, Bid: 100, Ask: 100.02, Present: schemas.FSymbol | schemas.FBid | schemas.FAsk}
			ev.Quote.Mid = 100.01
			buf = ev.AppendMsgpack(buf[:0])
			_ = p.nc.Publish(subjects[next], buf)
			next = (next + 1) % fanoutSymbols
		}
	}
}

func (p *quotePublisher) close() {
	close(p.stop)
	<-p.done
}

// fanout runs the fanout scenario: for each count, N SSE subscribers of a
// gateway, then N direct NATS subscribers, while quotes flow at the fixed
// rate.
func (s *suite) fanout(ctx context.Context) (*ScenarioResult, error) {
	sr := &ScenarioResult{Name: ScenarioFanout, Title: "fanout: enriched quotes to HTTP subscribers (SSE) against direct NATS subscribers",
		Description: fmt.Sprintf("%d symbols, each quoted %d times a second, published as enriched events on NATS (no workers). "+
			"N subscribers, each on %d symbols (owed %d events/s each), read them as server-sent events from a gateway (HTTP/1.1, "+
			"one connection each, snapshot=false), from a durable gateway of their own (the quotes stored in its pipeline's "+
			"enriched stream and read back through one ordered consumer), then the same N read them from NATS directly (one connection each, a "+
			"subscription per symbol). Latency is from the publisher's event time to the subscriber's receipt; CPU per "+
			"delivered event is the process's CPU in the window over the events the subscribers received; memory per idle "+
			"subscriber is the gateway's RSS growth with N subscribers connected and nothing published, over N.",
			fanoutSymbols, fanoutRate, fanoutPerSub, fanoutPerSub*fanoutRate)}
	env, err := s.fanoutEnv(ctx, fanoutPrefix, "core")
	if err != nil {
		return sr, err
	}
	denv, err := s.fanoutEnv(ctx, fanoutPrefix+"d", "durable")
	if err != nil {
		env.close()
		return sr, err
	}
	defer func() {
		if env != nil {
			env.close()
			denv.close()
		}
	}()
	counts := fanoutCounts
	if s.o.Quick {
		counts = []int{20}
	}
	var largest fanoutRun // the largest count that met both targets
	var missed string     // what the last count missed
	for _, n := range counts {
		sse, err := env.runSSE(ctx, s, n, false)
		if err != nil {
			return sr, err
		}
		dsse, err := denv.runSSE(ctx, s, n, false)
		if err != nil {
			return sr, err
		}
		dsse.label = "SSE via the gateway, durable (from the enriched stream)"
		direct, err := env.runDirect(ctx, s, n)
		if err != nil {
			return sr, err
		}
		sr.Notes = append(sr.Notes, sse.String(), dsse.String(), direct.String(),
			fmt.Sprintf("%d subscribers: SSE delivered %.2f× direct NATS (target ≥ 0.5×); memory per idle SSE subscriber %.1f KiB (target ≤ 64 KiB)",
				n, sse.delivered/max(direct.delivered, 1), sse.memPerSub/1024))
		s.log.Info("fanout", "sse", sse.String(), "direct", direct.String())
		if missed = fanoutMissed(sse, direct); missed == "" {
			largest = sse
			largest.label = fmt.Sprintf("%.2f× direct NATS", sse.delivered/max(direct.delivered, 1))
		}
	}
	if s.o.Quick {
		return sr, nil
	}
	if largest.subs < counts[len(counts)-1] {
		sr.Notes = append(sr.Notes, fmt.Sprintf("largest N that met both targets (SSE delivered ≥ %.1f× direct NATS, p99 ≤ %d ms): %d; %d subscribers missed: %s, so no larger N was tried",
			fanoutMinRatio, fanoutMaxP99, largest.subs, counts[len(counts)-1], missed))
		return sr, nil
	}
	// As many as the machine holds: core gateways alone (no durable row)
	// from the last count on.
	env.close()
	denv.close()
	env, denv = nil, nil
	return sr, s.fanoutLargest(ctx, sr, largest)
}

// fanoutEnv is a gateway and a publisher on the suite's NATS server.
type fanoutEnv struct {
	gw   *child
	nats *child
	pub  *nats.Conn
	subj schemas.Subjects
	// twinOf is the env whose publisher a twin gateway shares (nil: its own).
	twinOf *fanoutEnv
}

// fanoutEnv starts a gateway under prefix with delivery core or durable;
// for durable it first creates the pipeline's streams, so that the quotes
// published on the enriched subjects are stored as the workers' are.
func (s *suite) fanoutEnv(ctx context.Context, prefix, delivery string) (*fanoutEnv, error) {
	nc, err := s.ensureNATS(ctx)
	if err != nil {
		return nil, err
	}
	subj, err := schemas.NewSubjects(prefix)
	if err != nil {
		return nil, err
	}
	pub, err := nats.Connect(nc.addr)
	if err != nil {
		return nil, err
	}
	if delivery == "durable" {
		js, err := jetstream.New(pub)
		if err != nil {
			pub.Close()
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = bus.Apply(actx, js, subj, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
		cancel()
		if err != nil {
			pub.Close()
			return nil, fmt.Errorf("fanout: the durable streams: %w", err)
		}
	}
	gw, err := s.startStreamGateway(ctx, nc.addr, prefix, delivery, prefix+"-gateway")
	if err != nil {
		pub.Close()
		return nil, err
	}
	return &fanoutEnv{gw: gw, nats: nc, pub: pub, subj: subj}, nil
}

// twin starts a second core gateway named name beside e's, on the same
// prefix: it serves the same events, published once; closing the twin
// stops its gateway only.
func (e *fanoutEnv) twin(ctx context.Context, s *suite, name string) (*fanoutEnv, error) {
	gw, err := s.startStreamGateway(ctx, e.nats.addr, e.subj.Prefix(), "core", name)
	if err != nil {
		return nil, err
	}
	return &fanoutEnv{gw: gw, nats: e.nats, pub: e.pub, subj: e.subj, twinOf: e}, nil
}

// startStreamGateway starts a gateway for subscribers alone, over
// cleartext HTTP: it has no workers, so it is waited for on /healthz (its
// /readyz names the missing worker groups).
func (s *suite) startStreamGateway(ctx context.Context, natsURL, prefix, delivery, name string, extra ...string) (*child, error) {
	data, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"gateway", "--nats", natsURL, "--prefix", prefix,
		"--listen", data, "--ops-listen", ops, "--log-level", "warn", "--delivery", delivery, "--stream-max-subscribers", "20000"}, extra...)
	gw, err := s.startChild(name, RoleEdge, args...)
	if err != nil {
		return nil, err
	}
	s.track(gw)
	gw.addr, gw.ops = data, ops
	if err := gw.waitHTTP(ctx, "http://"+ops+"/healthz"); err != nil {
		return nil, err
	}
	return gw, nil
}

func (e *fanoutEnv) close() {
	if e.twinOf == nil {
		e.pub.Close()
	}
	_ = e.gw.stop(15 * time.Second)
}

// window publishes quotes, waits the warm-up, then records ls for the
// suite's Duration and returns the CPU each process used in it.
func (e *fanoutEnv) window(ctx context.Context, s *suite, ls []*latencies, procs ...*child) ([]time.Duration, error) {
	p := startQuotes(e.pub, e.subj)
	defer p.close()
	select {
	case <-time.After(max(s.o.Warmup, time.Second)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	before := make([]time.Duration, len(procs))
	for i, c := range procs {
		before[i], _ = cpuTime(c.pid)
	}
	for _, l := range ls {
		l.reset()
	}
	for _, l := range ls {
		l.on.Store(true)
	}
	select {
	case <-time.After(s.o.Duration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for _, l := range ls {
		l.on.Store(false)
	}
	out := make([]time.Duration, len(procs))
	for i, c := range procs {
		after, _ := cpuTime(c.pid)
		out[i] = after - before[i]
	}
	return out, nil
}

func perEvent(cpu time.Duration, events int64) float64 {
	if events == 0 {
		return 0
	}
	return float64(cpu) / 1e3 / float64(events)
}

// runDirect measures n direct NATS subscribers.
func (e *fanoutEnv) runDirect(ctx context.Context, s *suite, n int) (fanoutRun, error) {
	l := newLatencies()
	var conns []*nats.Conn
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	conns = make([]*nats.Conn, n)
	// Connected 16 at a time: one after the other, 10,000 take a while.
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := e.connectDirect(i, conns, l); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return fanoutRun{}, firstErr
	}
	cpu, err := e.window(ctx, s, []*latencies{l}, e.nats)
	if err != nil {
		return fanoutRun{}, err
	}
	ev := l.events.Load()
	return fanoutRun{label: "direct NATS", subs: n, owed: float64(n * fanoutPerSub * fanoutRate),
		delivered: float64(ev) / s.o.Duration.Seconds(), p50: l.quantile(50), p99: l.quantile(99),
		natsCPU: perEvent(cpu[0], ev)}, nil
}

// connectDirect connects direct subscriber i into conns[i], recording
// into l.
func (e *fanoutEnv) connectDirect(i int, conns []*nats.Conn, l *latencies) error {
	c, err := nats.Connect(e.nats.addr)
	if err != nil {
		return fmt.Errorf("direct subscriber %d: %w", i, err)
	}
	conns[i] = c
	for _, sym := range fanoutSymbolsOf(i) {
		if _, err := c.Subscribe(e.subj.Enriched(schemas.KindQuote, sym), func(m *nats.Msg) { l.record(msgpackTime(m.Data)) }); err != nil {
			return fmt.Errorf("direct subscriber %d: %w", i, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("direct subscriber %d: %w", i, err)
	}
	return nil
}

// msgpackTime reads the time attribute of a MessagePack CloudEvent.
func msgpackTime(data []byte) int64 {
	r := schemas.NewReader(data)
	n := r.MapHeader()
	for i := 0; i < n && !r.Done(); i++ {
		if !r.IsString() {
			return 0
		}
		if string(r.StringBytes()) == "time" {
			return r.Timestamp()
		}
		r.Skip()
	}
	return 0
}

var errFanoutSetup = errors.New("fanout: subscribers did not all connect")
