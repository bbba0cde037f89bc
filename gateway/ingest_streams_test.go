package gateway

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// TestMixedDeliveryIngestHoldsDurableTypesOnly: with quote core and trade
// durable, the ingest stream is over the trade subject alone, so the core
// quote batches are neither stored (nothing reads them) nor acked.
func TestMixedDeliveryIngestHoldsDurableTypesOnly(t *testing.T) {
	e := newTestEnv(t, "h1", nil, func(o *Options) { o.Delivery[schemas.KindTrade] = bus.ModeDurable })
	resp, body := e.post("quote", "application/json", `{"symbol":"AAPL","bid":100,"ask":100.5}`)
	wantAccepted(t, resp, body, 1)
	resp, body = e.post("trade", "application/json", `{"symbol":"AAPL","price":101.5,"size":10}`)
	wantAccepted(t, resp, body, 1)
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), bus.IngestStream(e.subj))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.CachedInfo().Config.Subjects, []string{e.subj.Ingest(schemas.KindTrade)}; !slices.Equal(got, want) {
		t.Errorf("ingest stream subjects %v, want %v", got, want)
	}
	// The core batch went out before the trade's was stored: were it
	// captured, it would be in the stream by now.
	for _, m := range e.ingestMsgs() {
		if m.Subject != e.subj.Ingest(schemas.KindTrade) {
			t.Errorf("ingest stream holds a batch on %s", m.Subject)
		}
	}
}

// TestCoreTypeCapturedFailsStart: a gateway whose quote type is core does
// not start while the ingest stream captures the quote subject (it would
// store the core batches forever), with or without a durable type, and
// says which type, which stream and what to do.
func TestCoreTypeCapturedFailsStart(t *testing.T) {
	_, url := opstest.RunNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var subj schemas.Subjects
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: bus.IngestStream(subj),
		Subjects: []string{subj.Prefix() + ".ingest.>"}, Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		delivery bus.Modes
	}{
		{"mixed", bus.Modes{schemas.KindTrade: bus.ModeDurable}},
		{"all core", bus.Modes{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := New(Options{Conn: nc, Listen: "127.0.0.1:0", Delivery: tc.delivery, Admission: AdmissionOptions{Disabled: true}})
			if err != nil {
				t.Fatal(err)
			}
			err = srv.Start()
			if err == nil {
				_ = srv.Shutdown(context.Background())
				t.Fatal("Start succeeded while the ingest stream captures the core quote subject")
			}
			if !errors.Is(err, bus.ErrIncompatibleStream) {
				t.Errorf("Start: %v, want an incompatible stream error", err)
			}
			for _, want := range []string{"quote", `"sluice-ingest"`, "--delivery", "sluice streams apply"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Start: %v, want it to name %s", err, want)
				}
			}
		})
	}
}

// TestDurableStartKeepsStreamSettings: a gateway started with its stream
// settings left at their defaults keeps the existing ingest stream's
// (another component or an operator set them); a setting given changes it.
func TestDurableStartKeepsStreamSettings(t *testing.T) {
	_, url := opstest.RunNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var subj schemas.Subjects
	name := bus.IngestStream(subj)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Description: "sluice ingest batches, removed once a worker group acks them",
		Subjects:  []string{subj.Prefix() + ".ingest.>"}, // as the first durable gateways made it
		Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew, Duplicates: time.Minute, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	start := func(so bus.StreamOptions) jetstream.StreamConfig {
		t.Helper()
		srv, err := New(Options{Conn: nc, Listen: "127.0.0.1:0", Delivery: bus.AllModes(bus.ModeDurable),
			Admission: AdmissionOptions{Disabled: true}, Durable: DurableOptions{Streams: so}})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		_ = srv.Shutdown(context.Background())
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config
	}
	if c := start(bus.StreamOptions{}); c.Duplicates != time.Minute || c.MaxBytes != 1<<20 || c.Replicas != 1 {
		t.Errorf("after a start with default settings: duplicates %v, max bytes %d, replicas %d; want 1m, 1 MiB, 1 kept",
			c.Duplicates, c.MaxBytes, c.Replicas)
	}
	if c := start(bus.StreamOptions{IngestMaxBytes: 2 << 20}); c.Duplicates != time.Minute || c.MaxBytes != 2<<20 {
		t.Errorf("after a start with --ingest-max-bytes 2 MiB: duplicates %v, max bytes %d; want 1m kept, 2 MiB set", c.Duplicates, c.MaxBytes)
	}
}
