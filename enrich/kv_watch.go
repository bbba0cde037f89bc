package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/schemas"
)

// maxWatchBatch bounds how many queued entries a [Watcher] applies in one
// write to its [Store], so that a bulk upload costs a few copies of the
// store rather than one per key.
const maxWatchBatch = 1024

// Watcher keeps a [Store] in step with a reference-data bucket. Create it
// with [Watch]; stop it with [Watcher.Stop] or by cancelling the context
// given to Watch.
type Watcher struct {
	bucket string
	store  *Store
	logger *slog.Logger
	kw     jetstream.KeyWatcher

	// keys maps each instrument key to the symbol last put under it, so a
	// delete removes the right symbol. Only the watch goroutine uses it
	// once Watch has returned.
	keys map[string]string

	updates atomic.Uint64
	skipped atomic.Uint64

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	err      error // from stopping kw; written before done is closed
}

// Watch opens the reference-data bucket, loads its content into store and
// keeps store up to date with it until ctx is cancelled or [Watcher.Stop] is
// called. ctx bounds both the initial load and the life of the watch: do not
// pass a context with a start-up timeout.
//
// Watch returns once the bucket's content at the time of the call is in
// store, replacing store's previous content in one write. It returns an error
// wrapping [jetstream.ErrBucketNotFound] when the bucket does not exist, or
// ctx's error when ctx ends before the initial load completes; store is then
// unchanged.
//
// After that, puts, deletes and purges are applied as they arrive, several at
// a time when they arrive together. An entry that does not decode, fails
// validation or sits under the wrong key is logged at Warn on logger, counted
// by [Watcher.Skipped] and skipped: store keeps what the key held before.
// Values are decoded leniently (unknown fields are ignored), so that a newer
// writer may add fields. A nil logger discards the logs.
func Watch(ctx context.Context, js jetstream.JetStream, bucket string, store *Store, logger *slog.Logger) (*Watcher, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("reference data bucket %q not found: load it with 'sluice refdata load': %w", bucket, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening reference data bucket %q: %w", bucket, err)
	}
	kw, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watching reference data bucket %q: %w", bucket, err)
	}
	w := &Watcher{
		bucket: bucket,
		store:  store,
		logger: logger,
		kw:     kw,
		keys:   make(map[string]string),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if err := w.loadInitial(ctx); err != nil {
		w.release(ctx)
		return nil, err
	}
	go w.run(ctx)
	return w, nil
}

// Stop stops the watch and waits for it to end; the store keeps its last
// content. It returns the error of unsubscribing, if any, or nil when the
// watch had already ended (ctx cancelled, connection closed), and the same
// result on every later call.
func (w *Watcher) Stop() error {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.err
}

// Done is closed when the watch has ended: after Stop, after ctx was
// cancelled, or when the subscription closed underneath it (the NATS
// connection was closed). From then on the store no longer follows the
// bucket.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Updates returns how many entries the watcher has applied to the store,
// counting the initial load, deletes and purges. It is incremented after the
// store shows the entries.
func (w *Watcher) Updates() uint64 { return w.updates.Load() }

// Skipped returns how many entries the watcher has skipped as invalid.
func (w *Watcher) Skipped() uint64 { return w.skipped.Load() }

// loadInitial applies the bucket's current content to fresh maps and swaps
// them into the store once the watcher's end-of-initial-values marker (a nil
// entry) arrives.
func (w *Watcher) loadInitial(ctx context.Context) error {
	next := &snapshot{
		instruments: make(map[string]*schemas.Instrument),
		fx:          make(map[string]float64),
	}
	var n uint64
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("loading reference data bucket %q: %w", w.bucket, context.Cause(ctx))
		case e, ok := <-w.kw.Updates():
			if !ok && ctx.Err() != nil { // nats.go unsubscribed as ctx ended
				return fmt.Errorf("loading reference data bucket %q: %w", w.bucket, context.Cause(ctx))
			}
			if !ok {
				return fmt.Errorf("loading reference data bucket %q: watch closed before the initial values arrived", w.bucket)
			}
			if e == nil {
				w.store.swap(next)
				w.updates.Add(n)
				return nil
			}
			if w.apply(e, next.instruments, next.fx) {
				n++
			}
		}
	}
}

// run applies updates until ctx ends, Stop is called or the updates channel
// closes.
func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	updates := w.kw.Updates()
	for {
		select {
		case <-ctx.Done():
		case <-w.stop:
		case e, ok := <-updates:
			if ok && w.applyBatch(e, updates) {
				continue
			}
			if ctx.Err() == nil { // not the unsubscribe that nats.go does when ctx ends
				w.logger.Warn("reference data watch ended: subscription closed; the store keeps its last content",
					"bucket", w.bucket)
				return
			}
		}
		w.err = w.release(ctx)
		return
	}
}

// release stops the key watcher and drains its channel, so that the NATS
// delivery goroutine, which blocks on a full channel, can finish; the
// channel closes once the subscription is gone.
//
// nats.go unsubscribes by itself when the context given to WatchAll ends, so
// release unsubscribes only when that context is still live, and treats a
// subscription or consumer that is already gone (a cancel racing with Stop)
// as stopped.
func (w *Watcher) release(ctx context.Context) error {
	var err error
	if ctx.Err() == nil {
		err = w.kw.Stop()
	}
	go func(updates <-chan jetstream.KeyValueEntry) {
		for range updates {
		}
	}(w.kw.Updates())
	if errors.Is(err, nats.ErrBadSubscription) || errors.Is(err, nats.ErrConsumerNotFound) {
		return nil
	}
	return err
}

// applyBatch applies first and whatever else is already queued, up to
// maxWatchBatch entries, in one store write. It reports false when it found
// the channel closed.
func (w *Watcher) applyBatch(first jetstream.KeyValueEntry, updates <-chan jetstream.KeyValueEntry) (open bool) {
	batch := []jetstream.KeyValueEntry{first}
	open = true
collect:
	for len(batch) < maxWatchBatch {
		select {
		case e, ok := <-updates:
			if !ok {
				open = false
				break collect
			}
			batch = append(batch, e)
		default:
			break collect
		}
	}
	var n uint64
	w.store.update(func(instruments map[string]*schemas.Instrument, fx map[string]float64) {
		for _, e := range batch {
			if e != nil && w.apply(e, instruments, fx) {
				n++
			}
		}
	})
	w.updates.Add(n)
	return open
}

// apply applies one entry to the maps and reports whether it did; it logs
// and counts an entry it skips.
func (w *Watcher) apply(e jetstream.KeyValueEntry, instruments map[string]*schemas.Instrument, fx map[string]float64) bool {
	var err error
	switch key := e.Key(); {
	case strings.HasPrefix(key, instrumentKeyPrefix):
		err = w.applyInstrument(e, instruments)
	case strings.HasPrefix(key, fxKeyPrefix):
		err = applyFX(e, fx)
	default:
		err = errors.New("key is neither instrument.<symbol> nor fx.<currency>")
	}
	if err != nil {
		w.logger.Warn("skipping reference data entry",
			"bucket", w.bucket, "key", e.Key(), "revision", e.Revision(), "error", err)
		w.skipped.Add(1) // after the log, so a reader of Skipped sees the log
		return false
	}
	return true
}

func (w *Watcher) applyInstrument(e jetstream.KeyValueEntry, instruments map[string]*schemas.Instrument) error {
	key := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		if symbol, ok := w.keys[key]; ok {
			delete(instruments, symbol)
			delete(w.keys, key)
		}
		return nil
	}
	in := new(schemas.Instrument)
	if err := json.Unmarshal(e.Value(), in); err != nil {
		return fmt.Errorf("decoding instrument: %w", err)
	}
	if err := validateInstrument(in); err != nil {
		return err
	}
	if want := InstrumentKey(in.Symbol); want != key {
		return fmt.Errorf("symbol %q belongs under key %q", in.Symbol, want)
	}
	if old, ok := w.keys[key]; ok && old != in.Symbol {
		delete(instruments, old)
	}
	instruments[in.Symbol] = in
	w.keys[key] = in.Symbol
	return nil
}

func applyFX(e jetstream.KeyValueEntry, fx map[string]float64) error {
	currency := strings.TrimPrefix(e.Key(), fxKeyPrefix)
	if e.Operation() != jetstream.KeyValuePut {
		delete(fx, currency)
		return nil
	}
	var rate schemas.FXRate
	if err := json.Unmarshal(e.Value(), &rate); err != nil {
		return fmt.Errorf("decoding FX rate: %w", err)
	}
	if err := validateFX(rate); err != nil {
		return err
	}
	if rate.Currency != currency {
		return fmt.Errorf("currency %q belongs under key %q", rate.Currency, FXKey(rate.Currency))
	}
	fx[currency] = rate.USDRate
	return nil
}
