package enrich_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

func TestBucketName(t *testing.T) {
	f := func(prefix, want string) {
		t.Helper()
		if got := enrich.BucketName(prefix); got != want {
			t.Errorf("BucketName(%q) = %q, want %q", prefix, got, want)
		}
	}
	f("sluice", "sluice_refdata")
	f("cell-1_eu", "cell-1_eu_refdata")
	f("sluice.eu", "sluice_eu_refdata")
	f("a b/c*>", "a_b_c___refdata")
	f("zürich", "z_rich_refdata")
	f("", "_refdata")
}

func TestKeys(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
	f(enrich.InstrumentKey("AAPL"), "instrument.AAPL")
	f(enrich.InstrumentKey("BRK.B"), "instrument.BRK_B")
	f(enrich.InstrumentKey("EUR/USD"), "instrument.EUR/USD")
	f(enrich.InstrumentKey("A.B.C-D"), "instrument.A_B_C-D")
	f(enrich.FXKey("GBX"), "fx.GBX")
}

// watch starts a Watcher on bucket into store, stopped by t.Cleanup, with
// its logs in the returned buffer.
func watch(t *testing.T, js jetstream.JetStream, bucket string, store *enrich.Store) (*enrich.Watcher, *syncBuffer) {
	t.Helper()
	logs := new(syncBuffer)
	w, err := enrich.Watch(t.Context(), js, bucket, store, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return w, logs
}

func TestUploadAndWatch(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	bucket := enrich.BucketName("sluice")
	sample := enrich.Sample()
	n, err := enrich.Upload(ctx, js, bucket, sample)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(sample.Instruments) + len(sample.FX); n != want {
		t.Errorf("Upload wrote %d keys, want %d", n, want)
	}

	store := enrich.NewStore()
	w, _ := watch(t, js, bucket, store)

	// Watch has returned: the store holds the bucket.
	if i, f := store.Len(); i != len(sample.Instruments) || f != len(sample.FX) {
		t.Errorf("store Len = %d, %d; want %d, %d", i, f, len(sample.Instruments), len(sample.FX))
	}
	if got := w.Updates(); got != uint64(n) {
		t.Errorf("Updates = %d after the initial load, want %d", got, n)
	}
	for _, sym := range []string{"AAPL", "BRK.B", "VOD.L", "7203.T"} {
		in, ok := store.Instrument(sym)
		if !ok || in.Symbol != sym {
			t.Errorf("Instrument(%q) = %+v, %v", sym, in, ok)
		}
	}
	if r, ok := store.USDRate("GBX"); !ok || r != 0.0127 {
		t.Errorf("USDRate(GBX) = %v, %v", r, ok)
	}

	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	aapl, _ := store.Instrument("AAPL")
	renamed := *aapl
	renamed.Name = "Apple Renamed Inc."
	putJSON(t, kv, enrich.InstrumentKey("AAPL"), renamed)
	putJSON(t, kv, enrich.FXKey("JPY"), schemas.FXRate{Currency: "JPY", USDRate: 0.0071})
	putJSON(t, kv, enrich.FXKey("SEK"), schemas.FXRate{Currency: "SEK", USDRate: 0.095})
	opstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if in, _ := store.Instrument("AAPL"); in.Name != renamed.Name {
			return fmt.Errorf("AAPL name is %q", in.Name)
		}
		if r, _ := store.USDRate("JPY"); r != 0.0071 {
			return fmt.Errorf("JPY rate is %v", r)
		}
		if _, ok := store.USDRate("SEK"); !ok {
			return errors.New("no SEK rate")
		}
		return nil
	})

	if err := kv.Delete(ctx, enrich.InstrumentKey("BRK.B")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, enrich.FXKey("SEK")); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if _, ok := store.Instrument("BRK.B"); ok {
			return errors.New("BRK.B still in the store")
		}
		if _, ok := store.USDRate("SEK"); ok {
			return errors.New("SEK still in the store")
		}
		return nil
	})
	if got, want := w.Updates(), uint64(n+5); got != want {
		t.Errorf("Updates = %d, want %d", got, want)
	}
	if w.Skipped() != 0 {
		t.Errorf("Skipped = %d, want 0", w.Skipped())
	}

	// A second watcher starts from the bucket as it is now, deletes included.
	fresh := enrich.NewStore()
	watch(t, js, bucket, fresh)
	if _, ok := fresh.Instrument("BRK.B"); ok {
		t.Error("a new watcher loaded a deleted instrument")
	}
	if in, _ := fresh.Instrument("AAPL"); in.Name != renamed.Name {
		t.Errorf("a new watcher loaded AAPL as %q", in.Name)
	}
}

func TestWatchSkipsBadEntries(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	bucket := enrich.BucketName("bad")
	if _, err := enrich.Upload(ctx, js, bucket, &enrich.RefData{
		Instruments: []schemas.Instrument{{Symbol: "AAPL", Name: "Apple Inc.", Currency: "USD"}},
		FX:          []schemas.FXRate{{Currency: "USD", USDRate: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	// Bad entries present before the watch starts.
	put(t, kv, "instrument.JUNK", `{not json`)
	put(t, kv, "other.key", `{}`)

	store := enrich.NewStore()
	w, logs := watch(t, js, bucket, store)
	if i, f := store.Len(); i != 1 || f != 1 {
		t.Errorf("Len = %d, %d; want 1, 1", i, f)
	}
	if w.Skipped() != 2 {
		t.Errorf("Skipped = %d after the initial load, want 2", w.Skipped())
	}

	// Bad updates: each is skipped and the key keeps its value. The
	// bucket keeps one revision per key, so a revision that the next put
	// to its key replaces before the watcher reads it is never delivered:
	// each waits until it was seen.
	skipped := uint64(2)
	seen := func() {
		t.Helper()
		skipped++
		opstest.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
			if got := w.Skipped(); got < skipped {
				return fmt.Errorf("Skipped = %d, want %d", got, skipped)
			}
			return nil
		})
	}
	put(t, kv, enrich.InstrumentKey("AAPL"), `{"symbol": "AAPL", "currency": 5}`)
	seen()
	putJSON(t, kv, enrich.InstrumentKey("AAPL"), schemas.Instrument{Symbol: "AAPL", Currency: "US"})
	seen()
	putJSON(t, kv, enrich.InstrumentKey("AAPL"), schemas.Instrument{Symbol: "MSFT", Currency: "USD"})
	seen()
	putJSON(t, kv, enrich.FXKey("USD"), schemas.FXRate{Currency: "USD", USDRate: -1})
	seen()
	putJSON(t, kv, enrich.FXKey("USD"), schemas.FXRate{Currency: "EUR", USDRate: 1.1})
	// A good update after them, with a field this build does not know.
	put(t, kv, enrich.FXKey("EUR"), `{"currency": "EUR", "usd_rate": 1.1, "source": "ecb"}`)
	opstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if _, ok := store.USDRate("EUR"); !ok {
			return errors.New("EUR not applied")
		}
		return nil
	})
	if got := w.Skipped(); got != 7 {
		t.Errorf("Skipped = %d, want 7", got)
	}
	if in, _ := store.Instrument("AAPL"); in.Name != "Apple Inc." || in.Currency != "USD" {
		t.Errorf("AAPL = %+v, want the last good value", in)
	}
	if _, ok := store.Instrument("MSFT"); ok {
		t.Error("an instrument under another symbol's key was applied")
	}
	if r, _ := store.USDRate("USD"); r != 1 {
		t.Errorf("USD rate = %v, want the last good value 1", r)
	}
	for _, want := range []string{
		`level=WARN msg="skipping reference data entry" bucket=bad_refdata key=instrument.JUNK`,
		`key=other.key`,
		`currency \"US\" is not a 3-letter code`,
		`symbol \"MSFT\" belongs under key \"instrument.MSFT\"`,
		`usd_rate -1 is not positive`,
		`currency \"EUR\" belongs under key \"fx.EUR\"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs do not contain %s:\n%s", want, logs)
		}
	}
}

// TestWatchSharedKey checks that two symbols under one key replace each
// other, and that deleting the key removes whichever was last put.
func TestWatchSharedKey(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	bucket := enrich.BucketName("shared")
	if _, err := enrich.Upload(ctx, js, bucket, &enrich.RefData{
		Instruments: []schemas.Instrument{{Symbol: "BRK.B", Currency: "USD"}},
	}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	store := enrich.NewStore()
	watch(t, js, bucket, store)
	putJSON(t, kv, "instrument.BRK_B", schemas.Instrument{Symbol: "BRK_B", Currency: "USD"})
	opstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if _, ok := store.Instrument("BRK_B"); !ok {
			return errors.New("BRK_B not applied")
		}
		if _, ok := store.Instrument("BRK.B"); ok {
			return errors.New("BRK.B still there")
		}
		return nil
	})
	if err := kv.Delete(ctx, "instrument.BRK_B"); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if i, _ := store.Len(); i != 0 {
			return fmt.Errorf("%d instruments left", i)
		}
		return nil
	})
}

func TestWatchMissingBucket(t *testing.T) {
	js := newJetStream(t)
	store := enrich.NewStore()
	store.PutFX(schemas.FXRate{Currency: "USD", USDRate: 1})
	w, err := enrich.Watch(t.Context(), js, "sluice_refdata", store, nil)
	if w != nil || err == nil {
		t.Fatalf("Watch = %v, %v; want an error", w, err)
	}
	want := `reference data bucket "sluice_refdata" not found: load it with 'sluice refdata load': `
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("error %v does not wrap jetstream.ErrBucketNotFound", err)
	}
	if _, f := store.Len(); f != 1 {
		t.Error("a failed Watch changed the store")
	}
}

func TestWatchEmptyBucketReplacesStore(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	bucket := enrich.BucketName("empty")
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	store := smallStore(t)
	w, _ := watch(t, js, bucket, store)
	if i, f := store.Len(); i != 0 || f != 0 {
		t.Errorf("Len = %d, %d after watching an empty bucket; want 0, 0", i, f)
	}
	if w.Updates() != 0 {
		t.Errorf("Updates = %d, want 0", w.Updates())
	}
}

func TestWatcherStops(t *testing.T) {
	js := newJetStream(t)
	bucket := enrich.BucketName("stop")
	if _, err := enrich.Upload(t.Context(), js, bucket, &enrich.RefData{FX: []schemas.FXRate{{Currency: "USD", USDRate: 1}}}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Stop", func(t *testing.T) {
		store := enrich.NewStore()
		w, err := enrich.Watch(t.Context(), js, bucket, store, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := w.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		select {
		case <-w.Done():
		default:
			t.Error("Done is open after Stop")
		}
		before := w.Updates()
		// More updates than the watcher's channel holds: the stopped watcher
		// must neither apply them nor block the connection.
		for i := range 300 {
			putJSON(t, kv, enrich.FXKey("USD"), schemas.FXRate{Currency: "USD", USDRate: float64(i + 2)})
		}
		if r, _ := store.USDRate("USD"); r != 1 || w.Updates() != before {
			t.Errorf("a stopped watcher applied an update: USD = %v", r)
		}
		putJSON(t, kv, enrich.FXKey("USD"), schemas.FXRate{Currency: "USD", USDRate: 1})
	})

	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		w, err := enrich.Watch(ctx, js, bucket, enrich.NewStore(), nil)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case <-w.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("watch still running 5s after its context was cancelled")
		}
		if err := w.Stop(); err != nil {
			t.Errorf("Stop after cancel: %v", err)
		}
	})

	t.Run("cancelled before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		store := enrich.NewStore()
		if _, err := enrich.Watch(ctx, js, bucket, store, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("Watch with a cancelled context: %v, want context.Canceled", err)
		}
	})
}

func TestUploadRejects(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	tests := []struct {
		name string
		rd   *enrich.RefData
		want string
	}{
		{"invalid", &enrich.RefData{FX: []schemas.FXRate{{Currency: "usd", USDRate: 1}}},
			`uploading reference data: fx 0 ("usd"): currency "usd" is not a 3-letter code`},
		{"shared key", &enrich.RefData{Instruments: []schemas.Instrument{
			{Symbol: "BRK.B", Currency: "USD"}, {Symbol: "BRK_B", Currency: "USD"}}},
			`uploading reference data: symbols "BRK.B" and "BRK_B" both map to key "instrument.BRK_B"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := enrich.Upload(ctx, js, "rejects_refdata", tc.rd)
			if n != 0 || err == nil || err.Error() != tc.want {
				t.Errorf("Upload = %d, %v; want 0, %s", n, err, tc.want)
			}
		})
	}
	if _, err := js.KeyValue(ctx, "rejects_refdata"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("a rejected upload created the bucket: %v", err)
	}
}

func TestUploadUpdates(t *testing.T) {
	js := newJetStream(t)
	ctx := t.Context()
	bucket := enrich.BucketName("again")
	rd := &enrich.RefData{FX: []schemas.FXRate{{Currency: "USD", USDRate: 1}}}
	for range 2 {
		if n, err := enrich.Upload(ctx, js, bucket, rd); n != 1 || err != nil {
			t.Fatalf("Upload = %d, %v", n, err)
		}
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 1 || st.Values() != 1 {
		t.Errorf("history %d, values %d; want 1, 1", st.History(), st.Values())
	}
}

func putJSON(t *testing.T, kv jetstream.KeyValue, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	put(t, kv, key, string(b))
}

func put(t *testing.T, kv jetstream.KeyValue, key, value string) {
	t.Helper()
	if _, err := kv.Put(t.Context(), key, []byte(value)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestWatchConnectionClosed(t *testing.T) {
	_, url := opstest.RunNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	bucket := enrich.BucketName("closed")
	if _, err := enrich.Upload(t.Context(), js, bucket, &enrich.RefData{FX: []schemas.FXRate{{Currency: "USD", USDRate: 1}}}); err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	store := enrich.NewStore()
	w, err := enrich.Watch(t.Context(), js, bucket, store, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("watch still running 5s after its connection closed")
	}
	if !strings.Contains(logs.String(), `level=WARN msg="reference data watch ended`) {
		t.Errorf("no warning that the watch ended:\n%s", logs)
	}
	if _, f := store.Len(); f != 1 {
		t.Error("the store lost its content when the watch ended")
	}
	if err := w.Stop(); err != nil {
		t.Errorf("Stop after the watch ended: %v", err)
	}
}
