package workers

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// FuzzProcess feeds arbitrary frames to the processing path: it must not
// panic, must account for every decoded event exactly once, and must publish
// one message per event plus at most one reply frame.
func FuzzProcess(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	check := processChecker()
	f.Fuzz(check)
}

// fuzzSeeds are frames, whole and broken, to start mutating from.
func fuzzSeeds() [][]byte {
	return [][]byte{
		benchFrame(schemas.KindQuote, 3, 2, true),
		benchFrame(schemas.KindTrade, 2, 0, true),
		benchFrame(schemas.KindQuote, 2, 0, false)[:40],
		schemas.BatchFrameHeader(nil),
		{0x91, 0x80},
		{0x92, 0x81, 0xa4, 'd', 'a', 't', 'a', 0x81, 0x01, 0x02, 0xc1},
		[]byte("not msgpack"),
	}
}

// processChecker returns the property FuzzProcess checks, over one
// processor reused from input to input as a worker goroutine reuses it.
func processChecker() func(t *testing.T, data []byte) {
	opts := benchOptions("quotes")
	opts.Kinds = schemas.Kinds
	pl := newPipeline(&opts)
	pub := &discard{}
	p := newProcessor(context.Background(), pl, pub)
	return func(t *testing.T, data []byte) {
		t.Helper()
		before := pl.enriched.Load() + pl.rejected.Load()
		msgsBefore := pub.msgs
		p.handle(&nats.Msg{Subject: "sluice.ingest.quote", Reply: "_INBOX.fuzz", Data: data}, pl.kinds[schemas.KindQuote])
		events := int(pl.enriched.Load() + pl.rejected.Load() - before)
		if events > len(data) {
			t.Fatalf("%d events from %d bytes", events, len(data))
		}
		if p.batch.Len() != events {
			t.Fatalf("batch of %d, %d outcomes", p.batch.Len(), events)
		}
		// One message per event, plus at most one reply (the frame fits).
		if sent := pub.msgs - msgsBefore; sent < events || sent > events+1 {
			t.Fatalf("%d messages for %d events", sent, events)
		}
	}
}

// TestProcessSurvivesCorruptFrames runs the fuzz property over seeded
// random corruptions of the seeds (bytes overwritten, cut, duplicated), so
// that plain go test covers it where fuzzing does not run.
func TestProcessSurvivesCorruptFrames(t *testing.T) {
	check := processChecker()
	seeds := fuzzSeeds()
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		d := append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
		for k := rng.IntN(4) + 1; k > 0 && len(d) > 0; k-- {
			switch i := rng.IntN(len(d)); rng.IntN(3) {
			case 0:
				d[i] = byte(rng.Uint32())
			case 1:
				d = d[:i]
			default:
				d = append(d[:i:i], append(d[i:i+1:i+1], d[i:]...)...)
			}
		}
		check(t, d)
	}
}
