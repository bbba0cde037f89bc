package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// idSeed hashes event ids on both sides of the match: the ids the server
// answered and the ids seen on NATS, in the same process.
var idSeed = maphash.MakeSeed()

func hashID(id []byte) uint64 { return maphash.Bytes(idSeed, id) }

// idSample holds the hashed ids of the accepted events that are observed end
// to end (see [PayloadOptions].SampleEvery).
type idSample struct {
	hashes   []uint64
	accepted uint64 // every accepted event, observed or not
	sampled  uint64 // observed ones
	invalid  uint64 // observed ones generated invalid: expected dead letters
}

// add reads the ids of an answer {"accepted": N, "ids": ["...", ...]} and
// keeps those of observed events; the i-th id is the i-th event of pl.
func (s *idSample) add(body []byte, pl *payload) {
	s.accepted += uint64(pl.events)
	i := bytes.Index(body, []byte(`"ids":[`))
	if i < 0 {
		return
	}
	rest := body[i+7:]
	for n := 0; n < pl.events; n++ {
		q := bytes.IndexByte(rest, '"')
		if q < 0 {
			return
		}
		rest = rest[q+1:]
		e := bytes.IndexByte(rest, '"')
		if e < 0 {
			return
		}
		if f := pl.flags[n]; f&flagObserved != 0 {
			s.hashes = append(s.hashes, hashID(rest[:e]))
			s.sampled++
			if f&flagInvalid != 0 {
				s.invalid++
			}
		}
		rest = rest[e+1:]
	}
}

func (s *idSample) merge(o *idSample) {
	s.hashes = append(s.hashes, o.hashes...)
	s.accepted += o.accepted
	s.sampled += o.sampled
	s.invalid += o.invalid
}

// E2E is what came out of the pipeline for the events accepted during a
// measured window. Ids are matched for the observed sample (every invalid
// event and the events of one symbol in SampleEvery); the other counts are
// exact.
type E2E struct {
	// Accepted is the number of events the server accepted (202) in the
	// window.
	Accepted uint64 `json:"accepted"`
	// Sampled of them are observed by id; ExpectedRejected of those were
	// generated invalid.
	Sampled          uint64 `json:"sampled"`
	ExpectedRejected uint64 `json:"expected_rejected"`
	// Enriched, Rejected and Missing split Sampled: seen on the enriched
	// subjects, seen on the dead-letter subjects, seen on neither.
	Enriched uint64 `json:"enriched"`
	Rejected uint64 `json:"rejected"`
	Missing  uint64 `json:"missing"`
	// SeenEnriched and SeenRejected count every message observed from the
	// start of the run (warm-up stragglers included); Undecodable ones had
	// no readable id.
	SeenEnriched uint64 `json:"seen_enriched"`
	SeenRejected uint64 `json:"seen_rejected"`
	Undecodable  uint64 `json:"undecodable"`
	// SlowConsumerDrops counts messages the observer's subscriptions
	// dropped: if not zero, Missing is overstated.
	SlowConsumerDrops uint64 `json:"slow_consumer_drops"`
	// Delay is, for the enriched events observed during the run, the time
	// from the gateway receiving the event (its sluicerecv attribute) to
	// the observer seeing it enriched: the queueing and processing behind
	// a 202. Empty for pipelines whose events carry no receive time.
	Delay Latency `json:"delay"`
	// DelayHist holds the delays Delay summarises, for [E2E.Add].
	DelayHist *hdrhistogram.Histogram `json:"-"`
}

// Add adds o's counts and delays to e's: the end-to-end figures of several
// runs.
func (e *E2E) Add(o *E2E) {
	e.Accepted += o.Accepted
	e.Sampled += o.Sampled
	e.ExpectedRejected += o.ExpectedRejected
	e.Enriched += o.Enriched
	e.Rejected += o.Rejected
	e.Missing += o.Missing
	e.SeenEnriched += o.SeenEnriched
	e.SeenRejected += o.SeenRejected
	e.Undecodable += o.Undecodable
	e.SlowConsumerDrops += o.SlowConsumerDrops
	e.DelayHist = MergeHistograms(e.DelayHist, o.DelayHist)
	e.Delay = Summarize(e.DelayHist)
}

// ObserverOptions configure an [Observer].
type ObserverOptions struct {
	// URL is the NATS server.
	URL string
	// Prefix is the pipeline's subject prefix ("sluice").
	Prefix string
	// Instruments and SampleEvery must be those of the payloads: the
	// observer subscribes to the enriched subjects of the observed symbols
	// only (all of them when SampleEvery is 1), so that watching the
	// pipeline costs NATS a fraction of its fan-out, and to every dead
	// letter.
	Instruments []schemas.Instrument
	SampleEvery int
}

// Observer subscribes to a pipeline's enriched and dead-letter subjects and
// records the ids it sees, to match them with the ids the server accepted.
// Messages are MessagePack events (sluice) or JSON objects with an "id"
// (the naive pipeline); dead letters hold the event under "event".
type Observer struct {
	nc   *nats.Conn
	subs []*nats.Subscription

	mu          sync.Mutex
	on          bool
	enriched    []uint64
	rejected    []uint64
	seenE       uint64
	seenR       uint64
	undecodable uint64
	last        time.Time
	delay       *hdrhistogram.Histogram // receive → seen enriched, µs
}

// NewObserver connects and subscribes. Close it when done.
func NewObserver(o ObserverOptions) (*Observer, error) {
	if o.SampleEvery <= 0 {
		return nil, errors.New("observer: SampleEvery must be at least 1")
	}
	nc, err := nats.Connect(o.URL, nats.Name("sluice-bench-observer"))
	if err != nil {
		return nil, fmt.Errorf("observer: connecting to %s: %w", o.URL, err)
	}
	ob := &Observer{nc: nc, delay: NewHistogram()}
	subjects := []string{o.Prefix + ".enriched.>"}
	if o.SampleEvery > 1 {
		subjects = subjects[:0]
		for i, in := range o.Instruments {
			if i%o.SampleEvery == o.SampleEvery-1 {
				subjects = append(subjects, o.Prefix+".enriched.*."+schemas.SymbolToken(in.Symbol))
			}
		}
	}
	for _, s := range subjects {
		if err := ob.subscribe(s, ob.onEnriched); err != nil {
			ob.Close()
			return nil, err
		}
	}
	if err := ob.subscribe(o.Prefix+".dlq.>", ob.onRejected); err != nil {
		ob.Close()
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		ob.Close()
		return nil, fmt.Errorf("observer: %w", err)
	}
	return ob, nil
}

func (o *Observer) subscribe(subject string, cb nats.MsgHandler) error {
	sub, err := o.nc.Subscribe(subject, cb)
	if err != nil {
		return fmt.Errorf("observer: subscribing to %s: %w", subject, err)
	}
	// Unbounded: a drop would read as a missing event.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return fmt.Errorf("observer: %w", err)
	}
	o.subs = append(o.subs, sub)
	return nil
}

// Start forgets what was seen and starts recording.
func (o *Observer) Start() {
	o.mu.Lock()
	o.on = true
	o.enriched, o.rejected = o.enriched[:0], o.rejected[:0]
	o.seenE, o.seenR, o.undecodable = 0, 0, 0
	o.delay.Reset()
	o.last = time.Now()
	o.mu.Unlock()
}

func (o *Observer) onEnriched(m *nats.Msg) { o.see(m.Data, false) }
func (o *Observer) onRejected(m *nats.Msg) { o.see(m.Data, true) }

func (o *Observer) see(data []byte, dead bool) {
	var id []byte
	var ok bool
	var recv int64
	if dead {
		id, ok = deadLetterID(data)
	} else {
		id, recv, ok = eventIDRecv(data)
	}
	var h uint64
	if ok {
		h = hashID(id)
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last = now
	if !o.on {
		return
	}
	if recv > 0 {
		recordLatency(o.delay, time.Duration(now.UnixNano()-recv))
	}
	switch {
	case !ok:
		o.undecodable++
	case dead:
		o.seenR++
		o.rejected = append(o.rejected, h)
	default:
		o.seenE++
		o.enriched = append(o.enriched, h)
	}
}

// settle waits for the pipeline to deliver the accepted sample and splits
// it by what the observer saw. It returns when every sampled id has been
// seen, when nothing has arrived for quiet, when max has passed or when ctx
// ends, and stops recording.
func (o *Observer) settle(ctx context.Context, s *idSample, quiet, max time.Duration) E2E {
	m := newMatcher(s.hashes)
	deadline := time.Now().Add(max)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		idle := o.absorb(m)
		if m.pending == 0 || idle >= quiet || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		break
	}
	o.mu.Lock()
	o.on = false
	r := E2E{Accepted: s.accepted, Sampled: s.sampled, ExpectedRejected: s.invalid,
		SeenEnriched: o.seenE, SeenRejected: o.seenR, Undecodable: o.undecodable,
		Enriched: uint64(m.enriched), Rejected: uint64(m.rejected), Missing: uint64(m.pending),
		DelayHist: MergeHistograms(o.delay)}
	r.Delay = Summarize(r.DelayHist)
	o.mu.Unlock()
	for _, sub := range o.subs {
		if n, err := sub.Dropped(); err == nil {
			r.SlowConsumerDrops += uint64(n)
		}
	}
	return r
}

// absorb matches what the observer saw since the last call and returns how
// long ago the last message arrived.
func (o *Observer) absorb(m *matcher) time.Duration {
	o.mu.Lock()
	newE, newR := slices.Clone(o.enriched[m.nE:]), slices.Clone(o.rejected[m.nR:])
	m.nE, m.nR = len(o.enriched), len(o.rejected)
	idle := time.Since(o.last)
	o.mu.Unlock()
	m.mark(newE, seenEnriched)
	m.mark(newR, seenRejected)
	return idle
}

// What the observer saw of an accepted id.
const (
	seenNothing uint8 = iota
	seenEnriched
	seenRejected
)

// matcher tracks which accepted ids have been seen.
type matcher struct {
	ids                         []uint64 // sorted, unique
	state                       []uint8
	nE, nR                      int // observed entries absorbed
	enriched, rejected, pending int
}

func newMatcher(hashes []uint64) *matcher {
	ids := slices.Clone(hashes)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return &matcher{ids: ids, state: make([]uint8, len(ids)), pending: len(ids)}
}

func (m *matcher) mark(seen []uint64, as uint8) {
	for _, h := range seen {
		i, ok := slices.BinarySearch(m.ids, h)
		if !ok || m.state[i] != seenNothing {
			continue
		}
		m.state[i] = as
		m.pending--
		if as == seenEnriched {
			m.enriched++
		} else {
			m.rejected++
		}
	}
}

// Close unsubscribes and closes the connection.
func (o *Observer) Close() {
	o.nc.Close()
}

// eventID returns the id of an event: a MessagePack CloudEvents map, or a
// JSON object whose "id" comes before any nested object.
func eventID(b []byte) ([]byte, bool) {
	id, _, ok := eventIDRecv(b)
	return id, ok
}

// eventIDRecv is eventID plus the gateway's receive time of a sluice
// enriched event (its data's received_at, Unix ns; 0 for JSON events and
// events without one). It skips every other value without decoding it:
// the observer runs beside the pipeline and must stay light.
func eventIDRecv(b []byte) (id []byte, recv int64, ok bool) {
	if len(b) == 0 {
		return nil, 0, false
	}
	if b[0] == '{' {
		id, ok := jsonID(b)
		return id, 0, ok
	}
	r := schemas.NewReader(b)
	n := r.MapHeader()
	for i := 0; i < n && r.Err() == nil; i++ {
		switch string(r.StringBytes()) {
		case "id":
			id = r.StringBytes()
		case "data":
			m := r.MapHeader()
			for j := 0; j < m && r.Err() == nil; j++ {
				if string(r.StringBytes()) == "received_at" {
					recv = r.Int64()
				} else {
					r.Skip()
				}
			}
		default:
			r.Skip()
		}
	}
	if r.Err() != nil || id == nil {
		return nil, 0, false
	}
	return id, recv, true
}

// deadLetterID returns the id of the event inside a dead letter.
func deadLetterID(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	if b[0] == '{' {
		i := bytes.Index(b, []byte(`"event":`))
		if i < 0 {
			return nil, false
		}
		return jsonID(b[i+8:])
	}
	var d schemas.DeadLetter
	r := schemas.NewReader(b)
	if err := d.DecodeMsgpack(&r); err != nil || d.Event == nil {
		return nil, false
	}
	return eventID(d.Event)
}

func jsonID(b []byte) ([]byte, bool) {
	i := bytes.Index(b, []byte(`"id":"`))
	if i < 0 {
		return nil, false
	}
	rest := b[i+6:]
	e := bytes.IndexByte(rest, '"')
	if e < 0 {
		return nil, false
	}
	return rest[:e], true
}
