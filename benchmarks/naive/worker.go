package naive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

// WorkerOptions configure a [Worker].
type WorkerOptions struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Prefix is the subject prefix; default "naive".
	Prefix string
	// Store holds the reference data. Required.
	Store *enrich.Store
	// Concurrency is the number of goroutines handling messages; default
	// GOMAXPROCS.
	Concurrency int
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// Durable consumes the ingest stream and stores every outcome, acked,
	// before it acks the message (see durable.go); Concurrency then
	// defaults to DefaultDurableConcurrency.
	Durable bool
}

// Worker is the naive worker: one queue subscription feeding a few
// goroutines.
type Worker struct {
	opts     WorkerOptions
	enricher *enrich.Enricher
	source   string
	msgs     chan *nats.Msg
	sub      *nats.Subscription
	wg       sync.WaitGroup
	// Durable mode.
	js    jetstream.JetStream
	jmsgs chan jetstream.Msg
	cc    jetstream.ConsumeContext
}

// NewWorker builds a Worker; Start subscribes.
func NewWorker(o WorkerOptions) (*Worker, error) {
	if o.Conn == nil || o.Store == nil {
		return nil, errors.New("naive worker: a NATS connection and a store are required")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
		if o.Durable {
			o.Concurrency = DefaultDurableConcurrency
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{opts: o, enricher: &enrich.Enricher{Store: o.Store}, source: "naive/worker",
		msgs: make(chan *nats.Msg, 65536)}, nil
}

// Start queue-subscribes to every ingest subject and starts the goroutines.
func (w *Worker) Start() error {
	if w.opts.Durable {
		return w.startDurable()
	}
	sub, err := w.opts.Conn.ChanQueueSubscribe(w.opts.Prefix+".ingest.*", "naive-workers", w.msgs)
	if err != nil {
		return fmt.Errorf("naive worker: %w", err)
	}
	w.sub = sub
	for range w.opts.Concurrency {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for m := range w.msgs {
				w.handle(m)
			}
		}()
	}
	return w.opts.Conn.Flush()
}

// Shutdown drains the subscription and waits for the goroutines, up to ctx.
func (w *Worker) Shutdown(ctx context.Context) error {
	if w.opts.Durable {
		return w.shutdownDurable(ctx)
	}
	if w.sub == nil {
		return nil
	}
	_ = w.sub.Unsubscribe()
	close(w.msgs)
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return w.opts.Conn.FlushWithContext(ctx)
}

func (w *Worker) handle(m *nats.Msg) {
	kindName := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	kind, ok := schemas.ParseKind(kindName)
	if !ok {
		return
	}
	var envs []Envelope
	if err := json.Unmarshal(m.Data, &envs); err != nil {
		w.opts.Logger.Warn("undecodable message", "subject", m.Subject, "err", err)
		return
	}
	results := make([]Result, len(envs))
	for i := range envs {
		results[i] = w.process(&envs[i], kind)
	}
	if m.Reply == "" {
		return
	}
	data, err := json.Marshal(results)
	if err == nil {
		err = m.Respond(data)
	}
	if err != nil {
		w.opts.Logger.Warn("reply failed", "err", err)
	}
}

// process validates and enriches one event and publishes the outcome.
func (w *Worker) process(env *Envelope, kind schemas.Kind) Result {
	o := w.outcome(env, kind)
	if o.subject != "" {
		msg := nats.NewMsg(o.subject)
		msg.Data = o.data
		if o.reason != "" {
			msg.Header.Set("Sluice-Reason", o.reason)
		}
		_ = w.opts.Conn.PublishMsg(msg)
	}
	return o.res
}

// outcome is what one event gives: its result, and the message to publish
// (subject "" for none).
type outcome struct {
	res     Result
	subject string
	data    []byte
	reason  string // a dead letter's first code
}

// outcome validates and enriches one event.
func (w *Worker) outcome(env *Envelope, kind schemas.Kind) outcome {
	now := time.Now()
	ev := toEvent(env, kind)
	errs := schemas.Validate(&ev, now.UnixNano(), schemas.Limits{}, nil)
	var out schemas.Enriched
	if len(errs) == 0 {
		errs = w.enricher.Enrich(&ev, now.UnixNano(), &out, errs)
	}
	if len(errs) > 0 {
		data, _ := json.Marshal(DeadLetter{Errors: errs, Event: *env})
		return outcome{res: Result{ID: env.ID, Status: http.StatusUnprocessableEntity, Errors: errs},
			subject: w.opts.Prefix + ".dlq." + kind.String(), data: data, reason: errs[0].Code}
	}
	enriched := w.enriched(env, kind, &out, now)
	data, err := json.Marshal(enriched)
	if err != nil {
		return outcome{res: Result{ID: env.ID, Status: http.StatusInternalServerError}}
	}
	return outcome{res: Result{ID: env.ID, Status: http.StatusOK, Event: data},
		subject: w.opts.Prefix + ".enriched." + kind.String() + "." + schemas.SymbolToken(enriched.Subject), data: data}
}

func (w *Worker) enriched(env *Envelope, kind schemas.Kind, out *schemas.Enriched, now time.Time) Enriched {
	e := Enriched{SpecVersion: "1.0", ID: env.ID, Source: w.source, Type: kind.EnrichedType(),
		Subject: env.Subject, Time: env.Time, DataContentType: "application/json",
		Data: EnrichedData{Payload: env.Data, ReceivedAt: env.ReceivedAt, EnrichedAt: now.UTC()}}
	if kind == schemas.KindQuote {
		q := out.Quote
		e.Data.Mid, e.Data.Spread, e.Data.SpreadBps = &q.Mid, &q.Spread, &q.SpreadBps
		e.Data.Instrument = q.Instrument
		e.Subject = q.Symbol
	} else {
		t := out.Trade
		e.Data.Notional, e.Data.NotionalUSD = &t.Notional, &t.NotionalUSD
		e.Data.Instrument = t.Instrument
		e.Subject = t.Symbol
	}
	return e
}
