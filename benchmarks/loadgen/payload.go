package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

// Format is how a request body carries its events.
type Format string

// The body formats of [PayloadOptions].
const (
	// FormatJSON is one JSON object, or a JSON array of them for a batch.
	FormatJSON Format = "json"
	// FormatNDJSON is one JSON object per line.
	FormatNDJSON Format = "ndjson"
	// FormatMsgpack is one MessagePack map, or an array of maps for a batch.
	FormatMsgpack Format = "msgpack"
	// FormatCEBinary is a CloudEvent in binary mode: the attributes in ce-*
	// headers (a fresh ce-id per request), the event as JSON in the body.
	// Single events only.
	FormatCEBinary Format = "ce-binary"
)

// ParseFormat maps a format name to its Format.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatJSON, FormatNDJSON, FormatMsgpack, FormatCEBinary:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: want json, ndjson, msgpack or ce-binary", s)
}

// Defaults of [PayloadOptions] that callers usually want; the zero values of
// TradeShare and InvalidShare mean none.
const (
	DefaultTradeShare   = 0.2
	DefaultInvalidShare = 0.01
	// DefaultSampleEvery observes one symbol in eight end to end.
	DefaultSampleEvery = 8
)

// PriorityHeader is the request header that carries a caller's priority for
// the gateway's load shedding.
const PriorityHeader = "Sluice-Priority"

// PayloadOptions describe the requests of a run.
type PayloadOptions struct {
	// Batch is the number of events per request; 0 or 1 sends single
	// events.
	Batch int
	// Format is the body format; default [FormatJSON].
	Format Format
	// TradeShare is the share of requests that carry trades (the others
	// carry quotes), 0 to 1.
	TradeShare float64
	// InvalidShare is the share of events that fail validation or
	// enrichment (crossed quotes, missing fields, negative sizes, unknown
	// symbols), 0 to 1.
	InvalidShare float64
	// Prefer asks for the result (Prefer: return=representation).
	Prefer bool
	// Minimal asks for an answer without a body (Prefer: return=minimal):
	// sluice then answers 202 alone, without the ids, so the end-to-end
	// check cannot match ids. Ignored with Prefer.
	Minimal bool
	// AcceptMsgpack asks for MessagePack results.
	AcceptMsgpack bool
	// Priority, when set, is sent in the [PriorityHeader] header.
	Priority string
	// Bodies is the number of distinct bodies generated and cycled
	// through; default 1024 for single events, 64 for batches.
	Bodies int
	// Seed makes the bodies reproducible; 0 picks one.
	Seed uint64
	// Instruments are the symbols events name; default the sample
	// reference data.
	Instruments []schemas.Instrument
	// Now is the exchange time (ts) of the events, give or take 50 ms;
	// default the time of [NewPayloads]. Events older than the workers'
	// --max-age are rejected as stale, so build payloads per run.
	Now time.Time
	// SampleEvery marks the events of every SampleEvery-th instrument (and
	// every invalid event) as observed end to end: their ids are matched
	// against what the [Observer] sees. 0 observes none, 1 all.
	SampleEvery int
}

// Event flags of a payload.
const (
	flagObserved uint8 = 1 << iota
	flagInvalid
)

// payload is one request body.
type payload struct {
	kind   schemas.Kind
	body   []byte
	events int
	flags  []uint8 // per event
}

// Payloads are the pre-generated requests of a run, chosen round robin by
// request number. Safe for concurrent use once bound.
type Payloads struct {
	opts    PayloadOptions
	list    []payload
	headers [3]http.Header // by kind
	urls    [3]*url.URL    // by kind, set by Bind
	runID   string
}

// NewPayloads generates the bodies of o.
func NewPayloads(o PayloadOptions) (*Payloads, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	p := &Payloads{opts: o, runID: randomID()}
	g := newEventGen(o)
	p.list = make([]payload, o.Bodies)
	for i := range p.list {
		p.list[i] = g.payload()
	}
	for _, k := range schemas.Kinds {
		p.headers[k] = o.header(k)
	}
	return p, nil
}

func (o *PayloadOptions) setDefaults() error {
	if o.Batch <= 0 {
		o.Batch = 1
	}
	if o.Format == "" {
		o.Format = FormatJSON
	}
	if o.Format == FormatCEBinary && o.Batch > 1 {
		return fmt.Errorf("ce-binary carries one event per request, not %d", o.Batch)
	}
	if o.TradeShare < 0 || o.TradeShare > 1 || o.InvalidShare < 0 || o.InvalidShare > 1 {
		return fmt.Errorf("trade and invalid shares must be within 0..1")
	}
	if o.Bodies <= 0 {
		o.Bodies = 1024
		if o.Batch > 1 {
			o.Bodies = 64
		}
	}
	if o.Seed == 0 {
		o.Seed = mrand.Uint64()
	}
	if len(o.Instruments) == 0 {
		o.Instruments = enrich.Sample().Instruments
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return nil
}

func (o *PayloadOptions) header(k schemas.Kind) http.Header {
	h := http.Header{}
	switch o.Format {
	case FormatNDJSON:
		h.Set("Content-Type", "application/x-ndjson")
	case FormatMsgpack:
		h.Set("Content-Type", "application/msgpack")
	default:
		h.Set("Content-Type", "application/json")
	}
	if o.Format == FormatCEBinary {
		h.Set("Ce-Specversion", "1.0")
		h.Set("Ce-Source", "/sluice/bench/loadgen")
		h.Set("Ce-Type", k.CEType())
	}
	switch {
	case o.Prefer:
		h.Set("Prefer", "return=representation")
	case o.Minimal:
		h.Set("Prefer", "return=minimal")
	}
	if o.AcceptMsgpack {
		h.Set("Accept", "application/msgpack")
	}
	if o.Priority != "" {
		h.Set(PriorityHeader, o.Priority)
	}
	return h
}

// Bind sets the server the requests go to: base is its URL, as
// "http://127.0.0.1:8080"; requests post to base + "/v1/events/<type>".
func (p *Payloads) Bind(base string) error {
	for _, k := range schemas.Kinds {
		u, err := url.Parse(base + "/v1/events/" + k.String())
		if err != nil {
			return fmt.Errorf("bad target %q: %w", base, err)
		}
		p.urls[k] = u
	}
	return nil
}

func (p *Payloads) pick(i uint64) *payload { return &p.list[i%uint64(len(p.list))] }

// request builds request number i. The header map is shared between
// requests (transports do not modify it) except in binary mode, where each
// request gets its own ce-id.
func (p *Payloads) request(ctx context.Context, i uint64) (*http.Request, *payload) {
	pl := p.pick(i)
	u := p.urls[pl.kind]
	h := p.headers[pl.kind]
	if p.opts.Format == FormatCEBinary {
		h = h.Clone()
		h["Ce-Id"] = []string{p.runID + "-" + strconv.FormatUint(i, 36)}
	}
	body := pl.body
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          u.Host,
		GetBody: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		},
	}
	return req.WithContext(ctx), pl
}

// Sample returns request number i's kind and body, for tests and for
// inspecting what a run sends.
func (p *Payloads) Sample(i uint64) (schemas.Kind, []byte, http.Header) {
	pl := p.pick(i)
	return pl.kind, pl.body, p.headers[pl.kind]
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// eventGen makes realistic quotes and trades: symbols drawn with a
// Zipf-like skew (a few names carry most of the traffic), prices around a
// per-symbol level, rounded to the tick, sizes in round lots.
type eventGen struct {
	o       PayloadOptions
	rnd     *mrand.Rand
	zipf    *mrand.Zipf
	levels  []float64
	tradeNo int
	scratch []byte // an event's MessagePack, transcoded for JSON bodies
}

func newEventGen(o PayloadOptions) *eventGen {
	rnd := mrand.New(mrand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	g := &eventGen{o: o, rnd: rnd,
		zipf:   mrand.NewZipf(rnd, 1.2, 8, uint64(len(o.Instruments)-1)),
		levels: make([]float64, len(o.Instruments))}
	for i, in := range o.Instruments {
		h := fnv.New64a()
		_, _ = h.Write([]byte(in.Symbol))
		u := float64(h.Sum64()%10_000) / 10_000
		g.levels[i] = math.Exp(math.Log(5) + u*(math.Log(800)-math.Log(5)))
	}
	return g
}

// payload makes one request body.
func (g *eventGen) payload() payload {
	kind := schemas.KindQuote
	if g.rnd.Float64() < g.o.TradeShare {
		kind = schemas.KindTrade
	}
	pl := payload{kind: kind, events: g.o.Batch, flags: make([]uint8, g.o.Batch)}
	var b []byte
	switch {
	case g.o.Format == FormatMsgpack && g.o.Batch > 1:
		b = schemas.AppendArrayHeader(b, g.o.Batch)
	case g.o.Format == FormatJSON && g.o.Batch > 1:
		b = append(b, '[')
	}
	for i := 0; i < g.o.Batch; i++ {
		if i > 0 && g.o.Format == FormatJSON {
			b = append(b, ',')
		}
		var flags uint8
		b, flags = g.event(b, kind)
		pl.flags[i] = flags
		if g.o.Format == FormatNDJSON {
			b = append(b, '\n')
		}
	}
	if g.o.Format == FormatJSON && g.o.Batch > 1 {
		b = append(b, ']')
	}
	pl.body = b
	return pl
}

// event appends one event of kind in the body format and returns its flags.
func (g *eventGen) event(b []byte, kind schemas.Kind) ([]byte, uint8) {
	idx := int(g.zipf.Uint64())
	in := &g.o.Instruments[idx]
	var flags uint8
	if g.o.SampleEvery > 0 && idx%g.o.SampleEvery == g.o.SampleEvery-1 {
		flags |= flagObserved
	}
	invalid := g.rnd.Float64() < g.o.InvalidShare
	if invalid {
		flags |= flagInvalid
		if g.o.SampleEvery > 0 {
			flags |= flagObserved // dead letters are observed in full
		}
	}
	ts := g.o.Now.Add(-time.Duration(g.rnd.IntN(50_000)) * time.Microsecond).UnixNano()
	var m []byte
	if kind == schemas.KindQuote {
		q := g.quote(in, idx, ts, invalid)
		m = q.AppendMsgpack(g.scratch[:0])
	} else {
		t := g.trade(in, idx, ts, invalid)
		m = t.AppendMsgpack(g.scratch[:0])
	}
	g.scratch = m
	if g.o.Format == FormatMsgpack {
		return append(b, m...), flags
	}
	// The JSON bodies are the MessagePack ones transcoded, as the gateway
	// renders its answers.
	b, err := schemas.AppendEventJSON(b, m)
	if err != nil {
		panic(fmt.Sprintf("loadgen: transcoding a generated event: %v", err))
	}
	return b, flags
}

func (g *eventGen) price(in *schemas.Instrument, idx int) float64 {
	tick := in.TickSize
	if tick <= 0 {
		tick = 0.01
	}
	p := g.levels[idx] * (1 + (g.rnd.Float64()-0.5)*0.02)
	return math.Max(tick, math.Round(p/tick)*tick)
}

func roundTick(p, tick float64) float64 {
	if tick <= 0 {
		tick = 0.01
	}
	// Round to the tick's decimals so that JSON carries 189.52, not
	// 189.51999999999998.
	dec := math.Max(0, math.Ceil(-math.Log10(tick)))
	f := math.Pow(10, dec)
	return math.Round(p*f) / f
}

// roundLot rounds a size up to a whole number of lots, as the workers
// require (a lot size of 0 or 1 leaves it as it is).
func roundLot(size, lot int64) int64 {
	if lot <= 1 {
		return size
	}
	return (size + lot - 1) / lot * lot
}

func (g *eventGen) quote(in *schemas.Instrument, idx int, ts int64, invalid bool) schemas.Quote {
	bid := roundTick(g.price(in, idx), in.TickSize)
	ask := roundTick(bid+float64(1+g.rnd.IntN(5))*math.Max(in.TickSize, 0.0001), in.TickSize)
	q := schemas.Quote{Symbol: in.Symbol, Bid: bid, Ask: ask,
		BidSize: roundLot(int64(100*(1+g.rnd.IntN(20))), in.LotSize),
		AskSize: roundLot(int64(100*(1+g.rnd.IntN(20))), in.LotSize),
		Venue:   in.MIC, TS: ts,
		Present: schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize | schemas.FVenue | schemas.FTS}
	if invalid {
		switch g.rnd.IntN(4) {
		case 0: // crossed
			q.Bid, q.Ask = q.Ask, q.Bid
		case 1:
			q.Present &^= schemas.FBid
		case 2:
			q.AskSize = -q.AskSize
		default:
			q.Symbol = "ZZZZ" + strconv.Itoa(g.rnd.IntN(100))
		}
	}
	return q
}

func (g *eventGen) trade(in *schemas.Instrument, idx int, ts int64, invalid bool) schemas.Trade {
	g.tradeNo++
	t := schemas.Trade{Symbol: in.Symbol, Price: roundTick(g.price(in, idx), in.TickSize),
		Size: roundLot(int64(1+g.rnd.IntN(1000)), in.LotSize), Venue: in.MIC, TS: ts,
		TradeID: "T" + strconv.Itoa(g.tradeNo),
		Present: schemas.FSymbol | schemas.FPrice | schemas.FSize | schemas.FVenue | schemas.FTS | schemas.FTradeID}
	if g.rnd.IntN(4) == 0 {
		t.Conditions = []string{"@", "I"}
		t.Present |= schemas.FConditions
	}
	if invalid {
		switch g.rnd.IntN(4) {
		case 0:
			t.Price = -t.Price
		case 1:
			t.Present &^= schemas.FVenue
		case 2:
			t.Size = -t.Size
		default:
			t.Symbol = "ZZZZ" + strconv.Itoa(g.rnd.IntN(100))
		}
	}
	return t
}
