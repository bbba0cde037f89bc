package workers

import (
	"context"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

func TestZZHang(t *testing.T) {
	raw, _ := os.ReadFile("/tmp/fuzzlast")
	d, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	opts := benchOptions("quotes")
	pl := newPipeline(&opts)
	p := newProcessor(context.Background(), pl, &discard{})
	start := time.Now()
	p.handle(&nats.Msg{Subject: "x", Reply: "r", Data: d}, pl.kinds[schemas.KindQuote])
	t.Logf("%v, batch %d, stats %d %d %d", time.Since(start), p.batch.Len(), pl.enriched.Load(), pl.rejected.Load(), pl.decodeErrors.Load())
}
