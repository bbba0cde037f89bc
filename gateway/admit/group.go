package admit

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// ShedOptions configure queue-depth shedding of one worker group; the zero
// value means defaults.
type ShedOptions struct {
	// MaxQueueDelay sets the group's depth bound from its drain rate:
	// bound = busy rate (the workers' LoadReport.MaxRate, the highest
	// recently reported, decaying) × MaxQueueDelay, so an admitted event waits at most
	// about this long in the workers' queues.
	MaxQueueDelay time.Duration
	// MinDepth and MaxDepth clamp the bound, in events. MinDepth (default
	// DefaultMinDepth, one full gateway batch) only matters for a group
	// slower than MinDepth/MaxQueueDelay events/s (a group that has not
	// reported a drain rate gets ColdDepth); a larger floor would break
	// the MaxQueueDelay promise for slow groups.
	MinDepth, MaxDepth int64
	// ColdDepth (default DefaultColdDepth) is the bound while the group
	// has reported no drain rate yet (its workers have processed nothing):
	// a first burst to a freshly started group is not judged against the
	// floor meant for slow groups.
	ColdDepth int64
	// Thresholds are the fractions of the bound at which each priority
	// (low, normal, high, critical) starts being shed.
	Thresholds [4]float64
	// Hysteresis: shedding of a priority stops once depth falls below
	// threshold × (1 - Hysteresis), so it does not flap.
	Hysteresis float64
	// Stale is how long a worker's last report keeps it alive; default ten
	// report intervals, at least a second (a CPU-starved worker may report
	// late; a dead one is caught at once by the no-responders notice).
	Stale time.Duration
}

// Defaults of ShedOptions.
const (
	DefaultMaxQueueDelay = 250 * time.Millisecond
	DefaultMinDepth      = 128
	DefaultMaxDepth      = 1 << 20
	DefaultColdDepth     = 2048
)

// DefaultThresholds are the shedding thresholds of low, normal, high and
// critical as fractions of the group's depth bound.
var DefaultThresholds = [4]float64{0.25, 0.5, 0.75, 1.0}

func (o *ShedOptions) setDefaults() {
	if o.MaxQueueDelay <= 0 {
		o.MaxQueueDelay = DefaultMaxQueueDelay
	}
	if o.MinDepth <= 0 {
		o.MinDepth = DefaultMinDepth
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	o.MaxDepth = max(o.MaxDepth, o.MinDepth)
	if o.ColdDepth <= 0 {
		o.ColdDepth = DefaultColdDepth
	}
	o.ColdDepth = min(max(o.ColdDepth, o.MinDepth), o.MaxDepth)
	if o.Thresholds == [4]float64{} {
		o.Thresholds = DefaultThresholds
	}
	if o.Hysteresis <= 0 || o.Hysteresis >= 1 {
		o.Hysteresis = 0.2
	}
}

// workerState is the last report of one worker.
type workerState struct {
	report schemas.LoadReport
	others int64 // of its pending and in-flight events, those from other gateways
	at     time.Time
}

// origin is one source of this gateway's batches for the group (a
// batcher): its reply subject and its exact count of events sent and not
// yet reported done.
type origin struct {
	reply  string
	events func() int64
}

// Group tracks the load of one worker group as its workers report it,
// plus this gateway's own contribution, and decides shedding.
type Group struct {
	name string
	opts ShedOptions

	origins []origin // set before the group is used; read-only after

	mu      sync.Mutex
	workers map[string]*workerState

	// Aggregates recomputed at each report, read lock-free per request.
	live     atomic.Int64 // live workers
	depth    atomic.Int64 // events pending at the workers, as reported
	others   atomic.Int64 // the part of depth from other gateways
	rateBits atomic.Uint64
	peakBits atomic.Uint64
	local    atomic.Int64 // events this gateway holds (batcher)
	dead     atomic.Bool  // NATS said nobody listens (no responders)
	deadAt   atomic.Int64 // unix ns of that notice
	shedding [4]atomic.Bool

	// Durable delivery (see [Group.SetDurable]).
	durable     bool
	backlog     atomic.Int64 // batches in the consumer, freshest report
	stored      atomic.Int64 // events this gateway stored since that report
	storedEv    atomic.Int64 // events and batches this gateway stored, for
	storedBatch atomic.Int64 // the mean events per batch
}

// NewGroup returns the tracker of group name.
func NewGroup(name string, opts ShedOptions) *Group {
	opts.setDefaults()
	return &Group{name: name, opts: opts, workers: make(map[string]*workerState)}
}

// AddOrigin registers one source of this gateway's batches for the group:
// reply is the reply subject its batches carry (workers split their load
// reports by it), events its exact count of events sent and not yet
// finished. Call it before the group is used.
func (g *Group) AddOrigin(reply string, events func() int64) {
	g.origins = append(g.origins, origin{reply: reply, events: events})
}

// SetDurable switches the group to durable delivery: its depth is the
// backlog of its consumer on the ingest stream, which the workers report
// (ConsumerPending and ConsumerAckPending of the freshest report, in
// batches, times the mean events per batch this gateway stored), plus the
// events this gateway stored since that report, plus the events it sent
// and the stream has not acknowledged yet (its origins). The backlog
// outlives the workers: a group without live workers keeps its last
// backlog and peak drain rate, so it accepts while the stream holds less
// than its bound. Call it before the group is used.
func (g *Group) SetDurable() { g.durable = true }

// Durable reports whether the group is in durable delivery.
func (g *Group) Durable() bool { return g.durable }

// Stored records a batch of n events stored by the stream (durable).
func (g *Group) Stored(n int) {
	g.stored.Add(int64(n))
	g.storedEv.Add(int64(n))
	g.storedBatch.Add(1)
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Observe records a worker's load report.
func (g *Group) Observe(lr *schemas.LoadReport, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.workers[lr.Worker]
	if !ok {
		w = &workerState{}
		g.workers[string([]byte(lr.Worker))] = w
	}
	w.report = *lr
	w.report.Worker, w.report.Group, w.report.Origins = "", "", nil // may alias a message buffer
	w.others = lr.PendingEvents + lr.InFlight
	for _, o := range lr.Origins {
		if g.isOrigin(o.Reply) {
			w.others -= o.Events
		}
	}
	w.others = max(w.others, 0)
	w.at = now
	if g.durable {
		// Every worker reads the same consumer: the freshest report holds,
		// and this gateway's batches stored before it are in it.
		g.backlog.Store(max(lr.ConsumerPending, 0) + max(lr.ConsumerAckPending, 0))
		g.stored.Store(0)
	}
	if lr.Stopping {
		delete(g.workers, lr.Worker)
	}
	g.recomputeLocked(now)
	// A report sent before the workers died can arrive just after the
	// no-responders notice: only a report well after it revives the group.
	if g.dead.Load() && now.UnixNano()-g.deadAt.Load() > int64(reviveAfter) {
		g.dead.Store(false)
	}
}

func (g *Group) isOrigin(reply string) bool {
	for _, o := range g.origins {
		if o.reply == reply {
			return true
		}
	}
	return false
}

// reviveAfter is how long after a no-responders notice load reports are
// not trusted to revive the group (reports already in flight).
const reviveAfter = 50 * time.Millisecond

// Expire drops workers whose reports stopped; call it periodically.
func (g *Group) Expire(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recomputeLocked(now)
}

func (g *Group) staleAfter(w *workerState) time.Duration {
	if g.opts.Stale > 0 {
		return g.opts.Stale
	}
	iv := time.Duration(w.report.IntervalMS) * time.Millisecond
	if iv <= 0 {
		iv = 100 * time.Millisecond
	}
	return max(10*iv, time.Second)
}

// recomputeLocked sums the live workers' reports.
func (g *Group) recomputeLocked(now time.Time) {
	var live, depth, others int64
	var rate, capacity float64
	for id, w := range g.workers {
		if now.Sub(w.at) > g.staleAfter(w) {
			delete(g.workers, id)
			continue
		}
		live++
		depth += w.report.PendingEvents + w.report.InFlight
		others += w.others
		rate += w.report.Rate
		// A worker's busy rate is its capacity; its rate over one
		// report interval is not: events finish a batch at a time, so
		// an interval that sees two batches end reads up to twice the
		// drain rate (a slowed 1,000 events/s worker, 128-event
		// batches, 100 ms reports: 900-1,620/s), and a bound sized on
		// that peak let admitted events queue past MaxQueueDelay. The
		// rate stands in only for a worker that reports no busy rate.
		if w.report.MaxRate > 0 {
			capacity += w.report.MaxRate
		} else {
			capacity += w.report.Rate
		}
	}
	g.live.Store(live)
	g.depth.Store(depth)
	g.others.Store(others)
	g.rateBits.Store(math.Float64bits(rate))
	peak := math.Float64frombits(g.peakBits.Load())
	if !g.durable || live > 0 {
		// Durable: a group without workers keeps its last known rate,
		// which bounds the backlog the stream takes for it meanwhile.
		peak *= 0.995
	}
	// The drain rate a group reaches when busy: its workers' own estimate
	// (known before they are ever saturated, so a first burst after an
	// idle spell is not judged against an idle rate), or the highest seen,
	// decaying slowly.
	g.peakBits.Store(math.Float64bits(max(peak, capacity)))
}

// NoResponders marks the group dead at once: NATS reported that nobody
// subscribes to its ingest subject. The next load report revives it.
func (g *Group) NoResponders() {
	g.deadAt.Store(time.Now().UnixNano())
	g.dead.Store(true)
}

// Local adjusts the events this gateway holds for the group (batcher).
func (g *Group) Local(delta int) { g.local.Add(int64(delta)) }

// Live returns the number of live workers, 0 when NATS reported no
// responders since the last report.
func (g *Group) Live() int64 {
	if g.dead.Load() {
		return 0
	}
	return g.live.Load()
}

// Rate returns the group's drain rate in events per second, as reported.
func (g *Group) Rate() float64 { return math.Float64frombits(g.rateBits.Load()) }

// Bound returns the group's depth bound in events.
func (g *Group) Bound() int64 {
	peak := math.Float64frombits(g.peakBits.Load())
	if peak <= 0 {
		return g.opts.ColdDepth
	}
	b := int64(peak * g.opts.MaxQueueDelay.Seconds())
	return min(max(b, g.opts.MinDepth), g.opts.MaxDepth)
}

// Depth returns the events queued for the group now: what this gateway
// sent and no worker has reported done (exact, see [Group.AddOrigin]),
// plus what the workers last reported holding from other gateways, plus
// what this gateway's batchers hold.
func (g *Group) Depth() int64 {
	return g.Sent() + g.Others() + g.local.Load()
}

// Sent returns the events this gateway sent to the group and no worker has
// reported done: in transit, queued at the workers or being processed.
func (g *Group) Sent() int64 {
	var n int64
	for _, o := range g.origins {
		n += o.events()
	}
	return n
}

// Others returns the events the workers last reported holding from other
// gateways; in durable delivery, the consumer's backlog in events (stored
// by any gateway, not yet acknowledged by a worker).
func (g *Group) Others() int64 {
	if g.durable {
		return g.Backlog()
	}
	return g.others.Load()
}

// Backlog returns, in durable delivery, the events stored in the stream
// for the group and not yet acknowledged by a worker: the freshest report's
// consumer counts in batches, times the mean events per batch of this
// gateway's stored batches (1 before it stored any), plus the events this
// gateway stored since that report.
func (g *Group) Backlog() int64 {
	mean := int64(1)
	if nb := g.storedBatch.Load(); nb > 0 {
		mean = max(g.storedEv.Load()/nb, 1)
	}
	return g.backlog.Load()*mean + g.stored.Load()
}

// Held returns the events this gateway's batchers hold for the group.
func (g *Group) Held() int64 { return g.local.Load() }

// Shed reports whether a request of priority p is shed at depth d, with
// hysteresis: a priority starts being shed at its threshold and stops below
// threshold × (1 - Hysteresis).
func (g *Group) Shed(p Priority, d int64) bool {
	th := g.opts.Thresholds[p] * float64(g.Bound())
	on := g.shedding[p].Load()
	switch {
	case !on && float64(d) >= th:
		g.shedding[p].Store(true)
		return true
	case on && float64(d) < th*(1-g.opts.Hysteresis):
		g.shedding[p].Store(false)
		return false
	}
	return on
}

// RetryAfter is how many seconds the group needs to drain depth d to the
// threshold of priority p at its current rate: at least 1, at most 60.
func (g *Group) RetryAfter(p Priority, d int64) int {
	rate := max(g.Rate(), math.Float64frombits(g.peakBits.Load())/4)
	target := g.opts.Thresholds[p] * float64(g.Bound()) * (1 - g.opts.Hysteresis)
	excess := float64(d) - target
	if rate <= 0 || excess <= 0 {
		return 1
	}
	return int(min(max(math.Ceil(excess/rate), 1), 60))
}
