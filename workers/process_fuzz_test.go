package workers

import (
	"fmt"
	"os"
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// FuzzProcess feeds arbitrary frames to the processing path: it must not
// panic, must not publish more outcomes than the frame could hold events,
// and must answer each waiting event at most once.
func FuzzProcess(f *testing.F) {
	for _, seed := range [][]byte{
		benchFrame(schemas.KindQuote, 3, 2, true),
		benchFrame(schemas.KindTrade, 2, 0, true),
		benchFrame(schemas.KindQuote, 2, 0, false)[:40],
		schemas.BatchFrameHeader(nil),
		{0x91, 0x80},
		{0x92, 0x81, 0xa4, 'd', 'a', 't', 'a', 0x81, 0x01, 0x02, 0xc1},
		[]byte("not msgpack"),
	} {
		f.Add(seed)
	}
	opts := benchOptions("quotes")
	opts.Kinds = schemas.Kinds
	pl := newPipeline(&opts)
	pub := &discard{}
	p := newProcessor(context.Background(), pl, pub)
	f.Fuzz(func(t *testing.T, data []byte) {
		if fh, err := os.OpenFile("/tmp/fuzzlast", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err == nil {
			fmt.Fprintf(fh, "%x\n", data)
			fh.Close()
		}
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
	})
}
