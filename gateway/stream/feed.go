package stream

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// feedBacklog bounds the messages received and not yet handled by a feed:
// past it the NATS client drops them (and reports a slow consumer) rather
// than grow without bound or block its reader; see checkDrops.
const feedBacklog = 16 << 10

// dropCheckEvery is how often a feed asks its NATS subscriptions whether
// the client dropped messages for them (Options.dropCheckEvery in tests).
const dropCheckEvery = time.Second

// dedupeWindow is how many recent events of a symbol a topic remembers, to
// drop the second copy of an event that reaches the gateway through two
// filters at once (the symbol's subject and the type's wildcard).
const dedupeWindow = 8

// topic is one symbol of a feed: its cached last event, its sequence, the
// subscribers that named it and the subscription on its subject.
type topic struct {
	symbol string
	last   *event // the last event received; nil before the first
	seq    uint64 // events of this symbol received, from 1
	pos    uint64 // the feed position of last
	subs   []*queue
	nsub   *nats.Subscription // on the symbol's subject while subs is not empty
	recent [dedupeWindow]uint64
	next   uint8
}

// seen reports whether an event of hash h was among the last ones, and
// remembers h.
func (t *topic) seen(h uint64) bool {
	for _, r := range t.recent {
		if r == h {
			return true
		}
	}
	t.recent[t.next] = h
	t.next = (t.next + 1) % dedupeWindow
	return false
}

// feed is one type's events: its NATS filters (one subscription per symbol
// named by some subscriber, one on the type's wildcard while some subscriber
// asks for every symbol), each shared by all the subscribers that need it,
// and its last-value cache. Every event is handled under mu: the cache
// update, the sequences and the offers to the subscribers' queues, which
// never block. Registering a subscriber takes mu too, so its snapshot is
// exactly the events before its first live one.
type feed struct {
	hub    *Hub
	kind   schemas.Kind
	stream string // the resume tokens' stream name
	epoch  uint64 // the resume tokens' epoch
	base   string // "<prefix>.enriched.<type>."
	seed   maphash.Seed
	// rep stores this type's events (durable mode, durable.go); nil in
	// core mode.
	rep Replayer

	mu     sync.Mutex
	topics map[string]*topic
	all    []*queue                   // subscribers of symbols=*
	wild   *nats.Subscription         // on base+"*" while all is not empty
	pos    uint64                     // events received since the hub started
	subs   map[*nats.Subscription]int // every subscription, with the drops seen so far

	// Durable mode: the stream's consumer, ready (closed once it has
	// caught up), and whether the cache holds every symbol's last event
	// (no eviction since it began).
	stopFollow func()
	ready      chan struct{}
	isReady    bool
	complete   bool

	// Every subscription of the feed delivers into ch, in the order the
	// NATS connection reads them, and one goroutine handles ch: the two
	// copies of an event that two filters match arrive close together,
	// within dedupeWindow.
	ch chan *nats.Msg
}

func newFeed(h *Hub, k schemas.Kind) *feed {
	base := h.opts.Subjects.Prefix() + ".enriched." + k.String()
	f := &feed{hub: h, kind: k, stream: "core:" + base, epoch: h.epoch, base: base + ".",
		seed: maphash.MakeSeed(), topics: make(map[string]*topic), ch: make(chan *nats.Msg, h.opts.backlog),
		subs: make(map[*nats.Subscription]int), ready: make(chan struct{})}
	if r := h.opts.Replayer; r != nil {
		if name := r.Stream(k); name != "" {
			f.rep, f.stream, f.epoch = r, name, 0
		}
	}
	go f.loop()
	return f
}

// loop handles the feed's messages until the hub has shut down.
func (f *feed) loop() {
	tick := time.NewTicker(f.hub.opts.dropCheckEvery)
	defer tick.Stop()
	for {
		select {
		case m := <-f.ch:
			f.onMsg(m)
		case <-tick.C:
			f.checkDrops()
		case <-f.hub.stopped:
			return
		}
	}
}

// checkDrops makes the messages the NATS client dropped (its backlog for
// the feed was full) visible as a gap: every symbol's sequence, and the
// feed's position, skip one, so that each subscriber sees sluiceseq jump
// by more than 1 + sluicereplaced on its next event and can resubscribe.
func (f *feed) checkDrops() {
	f.mu.Lock()
	defer f.mu.Unlock()
	lost := 0
	for sub, seen := range f.subs {
		if d, err := sub.Dropped(); err == nil && d > seen {
			lost += d - seen
			f.subs[sub] = d
		}
	}
	if lost == 0 {
		return
	}
	f.hub.m.dropped.Add(lost)
	f.pos++
	for _, t := range f.topics {
		t.seq++
	}
}

// onMsg handles one enriched event from any of the feed's subscriptions.
func (f *feed) onMsg(m *nats.Msg) {
	tok, ok := strings.CutPrefix(m.Subject, f.base)
	if !ok {
		return
	}
	sym, err := schemas.TokenSymbol(tok)
	if err != nil {
		f.hub.m.badSubject.Inc()
		return
	}
	h := maphash.Bytes(f.seed, m.Data)
	f.mu.Lock()
	t := f.topics[sym]
	if t == nil {
		if len(f.all) == 0 {
			// A message still in flight from a filter just dropped.
			f.mu.Unlock()
			return
		}
		t = f.newTopic(sym)
	}
	if t.seen(h) {
		f.mu.Unlock()
		return
	}
	f.pos++
	f.deliverLocked(t, m.Data, f.pos)
	f.mu.Unlock()
	f.hub.m.received.Inc()
}

// deliverLocked makes data, at stream position pos, t's next event and
// last value, and offers it to t's subscribers and to those of every
// symbol. Called with mu held, by the core and the durable feed alike.
func (f *feed) deliverLocked(t *topic, data []byte, pos uint64) {
	t.seq++
	ev := &event{data: data}
	t.last, t.pos = ev, pos
	it := item{t: t, ev: ev, seq: t.seq, pos: pos}
	for _, q := range t.subs {
		q.offer(it)
	}
	for _, q := range f.all {
		q.offer(it)
	}
}

// newTopic adds a topic for sym, first evicting one that no subscriber
// names when the cache is full. Called with mu held.
func (f *feed) newTopic(sym string) *topic {
	if len(f.topics) >= f.hub.opts.CacheSymbols {
		for s, t := range f.topics {
			if len(t.subs) == 0 {
				delete(f.topics, s)
				f.hub.m.evicted.Inc()
				f.complete = false
				break
			}
		}
	}
	t := &topic{symbol: sym}
	f.topics[sym] = t
	return t
}

// register adds q for req's symbols and, when req asks for it, queues the
// snapshot (the cached last event of each symbol) and its end marker ahead
// of any live event. In durable mode it returns errCatchUp, having added
// nothing, for a resume or a snapshot the cache cannot give.
func (f *feed) register(q *queue, req *request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rep != nil && (req.resume || req.snapshot && !f.complete) {
		return errCatchUp
	}
	if err := f.addLocked(q, req); err != nil {
		return err
	}
	if !req.snapshot {
		return nil
	}
	var snap []*topic
	if req.all {
		snap = make([]*topic, 0, len(f.topics))
		for _, t := range f.topics {
			snap = append(snap, t)
		}
	} else {
		snap = make([]*topic, 0, len(req.symbols))
		for _, sym := range req.symbols {
			snap = append(snap, f.topics[sym])
		}
	}
	if f.rep != nil {
		// Positions increase along a stream: a resume token of a snapshot
		// event names exactly the snapshot events before it.
		slices.SortFunc(snap, func(a, b *topic) int { return cmp.Compare(a.pos, b.pos) })
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.limit += len(snap) + 1
	n := uint32(0)
	for _, t := range snap {
		if t.last != nil {
			q.offerLocked(item{t: t, ev: t.last, seq: t.seq, pos: t.pos})
			n++
		}
	}
	q.offerLocked(item{mark: markSnapshotEnd, count: n})
	q.signal()
	return nil
}

// addLocked adds q to the filters req names, subscribing (core mode) to
// those nobody needed yet. Called with mu held.
func (f *feed) addLocked(q *queue, req *request) error {
	if req.all {
		if f.wild == nil && f.rep == nil {
			sub, err := f.subscribe(f.base + "*")
			if err != nil {
				return err
			}
			f.wild = sub
		}
		f.all = append(f.all, q)
		return nil
	}
	for i, sym := range req.symbols {
		t := f.topics[sym]
		if t == nil {
			t = f.newTopic(sym)
		}
		if t.nsub == nil && f.rep == nil {
			sub, err := f.subscribe(f.hub.opts.Subjects.Enriched(f.kind, sym))
			if err != nil {
				f.unregisterLocked(q, req.symbols[:i], false)
				return err
			}
			t.nsub = sub
		}
		t.subs = append(t.subs, q)
	}
	return nil
}

func (f *feed) subscribe(subject string) (*nats.Subscription, error) {
	sub, err := f.hub.opts.Conn.ChanSubscribe(subject, f.ch)
	if err != nil {
		return nil, fmt.Errorf("subscribing to %s: %w", subject, err)
	}
	f.subs[sub] = 0
	return sub, nil
}

func (f *feed) unsubscribe(sub *nats.Subscription) {
	delete(f.subs, sub)
	_ = sub.Unsubscribe()
}

// unregister removes q; a filter nobody needs any longer is unsubscribed,
// and a symbol no filter feeds leaves the cache (its sequence starts again
// at 1 when it is fed again).
func (f *feed) unregister(q *queue, req *request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unregisterLocked(q, req.symbols, req.all)
}

func (f *feed) unregisterLocked(q *queue, symbols []string, all bool) {
	if f.rep != nil {
		// Durable mode: the stream's consumer feeds the cache whoever
		// listens.
		if all {
			f.all = remove(f.all, q)
		}
		for _, sym := range symbols {
			if t := f.topics[sym]; t != nil {
				t.subs = remove(t.subs, q)
			}
		}
		return
	}
	if all {
		f.all = remove(f.all, q)
		if len(f.all) == 0 && f.wild != nil {
			f.unsubscribe(f.wild)
			f.wild = nil
			for sym, t := range f.topics {
				if len(t.subs) == 0 {
					delete(f.topics, sym)
				}
			}
		}
	}
	for _, sym := range symbols {
		t := f.topics[sym]
		if t == nil {
			continue
		}
		t.subs = remove(t.subs, q)
		if len(t.subs) > 0 {
			continue
		}
		if t.nsub != nil {
			f.unsubscribe(t.nsub)
			t.nsub = nil
		}
		if f.wild == nil {
			delete(f.topics, sym)
		}
	}
}

func remove(qs []*queue, q *queue) []*queue {
	for i, x := range qs {
		if x == q {
			last := len(qs) - 1
			qs[i] = qs[last]
			qs[last] = nil
			return qs[:last]
		}
	}
	return qs
}
