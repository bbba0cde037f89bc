package workers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

// TestCoreTypeCapturedFailsStart: a worker whose quote type is core does
// not start while a stream of the pipeline captures the quote subject
// (the ingest stream would store its core batches forever), whether it has
// durable types or none, and says which type, which stream and what to do.
func TestCoreTypeCapturedFailsStart(t *testing.T) {
	for _, tc := range []struct {
		name, stream, subject string
		delivery              bus.Modes
	}{
		{"mixed", bus.IngestStream(subjects), "sluice.ingest.>", bus.Modes{schemas.KindTrade: bus.ModeDurable}},
		{"all core ingest", bus.IngestStream(subjects), "sluice.ingest.>", bus.Modes{}},
		{"all core enriched", bus.EnrichedStream(subjects), "sluice.enriched.>", bus.Modes{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := runNATS(t)
			nc := connect(t, url)
			js := jsOf(t, nc)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			cfg := jetstream.StreamConfig{Name: tc.stream, Subjects: []string{tc.subject}, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld}
			if strings.HasSuffix(tc.stream, "-ingest") {
				cfg.Retention, cfg.Discard = jetstream.WorkQueuePolicy, jetstream.DiscardNew
			}
			if _, err := js.CreateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			w, err := workers.New(workers.Options{Conn: nc, Group: "quotes", Enricher: sampleEnricher(), Delivery: tc.delivery})
			if err != nil {
				t.Fatal(err)
			}
			err = w.Start()
			if err == nil {
				_ = w.Shutdown(ctx)
				t.Fatal("Start succeeded while a stream captures the core quote subject")
			}
			if !errors.Is(err, bus.ErrIncompatibleStream) {
				t.Errorf("Start = %v, want an incompatible stream error", err)
			}
			for _, want := range []string{"quote", `"` + tc.stream + `"`, "--delivery", "sluice streams apply"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Start = %v, want it to name %s", err, want)
				}
			}
		})
	}
}

// TestDurableStartKeepsStreamSettings: a worker started with its stream
// settings left zero keeps the existing streams' values (another
// component or an operator set them), and gives the streams the subjects
// of its durable types alone.
func TestDurableStartKeepsStreamSettings(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	js := jsOf(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := bus.Apply(ctx, js, subjects, bus.StreamOptions{Delivery: bus.Modes{schemas.KindQuote: bus.ModeDurable},
		Duplicates: time.Minute, EnrichedMaxAge: time.Hour, EnrichedMaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, url, durableQuotes(workers.Options{}))
	st, err := js.Stream(ctx, bus.EnrichedStream(subjects))
	if err != nil {
		t.Fatal(err)
	}
	c := st.CachedInfo().Config
	if c.Duplicates != time.Minute || c.MaxAge != time.Hour || c.MaxBytes != 1<<20 {
		t.Errorf("enriched stream after a worker's start: duplicates %v, max age %v, max bytes %d; want 1m, 1h, 1 MiB kept", c.Duplicates, c.MaxAge, c.MaxBytes)
	}
	// durableQuotes makes every type durable: the trade subject is added.
	if want := []string{"sluice.enriched.quote.>", "sluice.enriched.trade.>"}; !slices.Equal(c.Subjects, want) {
		t.Errorf("enriched subjects %v, want %v", c.Subjects, want)
	}
}
