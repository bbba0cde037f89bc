package naive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// The naive pipeline in durable mode (GatewayOptions.Durable and
// WorkerOptions.Durable) is the conventional JetStream design, the shape of
// the common stream processors' JetStream inputs and outputs: the gateway
// publishes each request as one JetStream message (asynchronously, many in
// flight, with Nats-Msg-Id the first event's id) and answers 202 once the
// stream has acknowledged it; the worker consumes the ingest stream through
// a durable pull consumer with many messages in flight
// ([DefaultDurableConcurrency] goroutines), stores every enriched event in
// the enriched stream and every dead letter in the dead-letter stream, one
// message each with a Nats-Msg-Id, and acks the request's message once
// they are all stored. Its streams are sluice's own ([bus.Apply] under the
// naive prefix), so that the comparison is about the design, not the
// streams' settings.

// DefaultDurableConcurrency is the naive durable worker's messages in
// flight: a conventional consumer keeps many (max_ack_pending), since each
// waits for its stores.
const DefaultDurableConcurrency = 256

// durableTimeout bounds a stored publish and the streams' creation.
const durableTimeout = 10 * time.Second

// publishDurable stores the request's message and answers 202 once the
// ingest stream has acknowledged it, 503 if it does not.
func (g *Gateway) publishDurable(w http.ResponseWriter, r *http.Request, subject string, data []byte, envs []Envelope) {
	msg := nats.NewMsg(subject)
	msg.Data = data
	if len(envs) > 0 {
		msg.Header.Set(jetstream.MsgIDHeader, envs[0].ID)
	}
	fut, err := g.js.PublishMsgAsync(msg)
	if err == nil {
		select {
		case <-fut.Ok():
		case err = <-fut.Err():
		case <-r.Context().Done():
			err = r.Context().Err()
		}
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Problem{Status: 503, Title: "Service Unavailable", Detail: err.Error()})
		return
	}
	ids := make([]string, len(envs))
	for i := range envs {
		ids[i] = envs[i].ID
	}
	writeJSON(w, http.StatusAccepted, Accepted{Accepted: len(envs), IDs: ids})
}

// startDurable creates the streams, the group's durable consumer and the
// goroutines that process its messages.
func (w *Worker) startDurable() error {
	js, err := jetstream.New(w.opts.Conn, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return fmt.Errorf("naive worker: %w", err)
	}
	w.js = js
	subjects, err := schemas.NewSubjects(w.opts.Prefix)
	if err != nil {
		return fmt.Errorf("naive worker: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), durableTimeout)
	defer cancel()
	if _, err := bus.Apply(ctx, js, subjects, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}); err != nil {
		return fmt.Errorf("naive worker: streams: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.IngestStream(subjects), jetstream.ConsumerConfig{
		Durable: "naive-workers", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxAckPending: 4 * w.opts.Concurrency, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("naive worker: consumer: %w", err)
	}
	w.jmsgs = make(chan jetstream.Msg, w.opts.Concurrency)
	for range w.opts.Concurrency {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for m := range w.jmsgs {
				w.handleDurable(m)
			}
		}()
	}
	w.cc, err = cons.Consume(func(m jetstream.Msg) { w.jmsgs <- m }, jetstream.PullMaxMessages(w.opts.Concurrency))
	if err != nil {
		close(w.jmsgs)
		return fmt.Errorf("naive worker: consume: %w", err)
	}
	return nil
}

// shutdownDurable stops pulling, then lets the goroutines finish what they
// hold, up to ctx.
func (w *Worker) shutdownDurable(ctx context.Context) error {
	if w.cc == nil {
		return nil
	}
	w.cc.Stop()
	select {
	case <-w.cc.Closed():
	case <-ctx.Done():
		return ctx.Err()
	}
	close(w.jmsgs)
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handleDurable stores the outcome of every event of a message, then acks
// it; a store that fails naks it, to be processed again (the stores'
// Nats-Msg-Id keeps the enriched stream free of duplicates).
func (w *Worker) handleDurable(m jetstream.Msg) {
	subject := m.Subject()
	kind, ok := schemas.ParseKind(subject[strings.LastIndexByte(subject, '.')+1:])
	if !ok {
		_ = m.Term()
		return
	}
	var envs []Envelope
	if err := json.Unmarshal(m.Data(), &envs); err != nil {
		w.opts.Logger.Warn("undecodable message", "subject", subject, "err", err)
		_ = m.Term()
		return
	}
	futs := make([]jetstream.PubAckFuture, 0, len(envs))
	var err error
	for i := range envs {
		o := w.outcome(&envs[i], kind)
		if o.subject == "" {
			continue
		}
		msg := nats.NewMsg(o.subject)
		msg.Data = o.data
		id := envs[i].Source + " " + envs[i].ID
		if o.reason != "" {
			msg.Header.Set("Sluice-Reason", o.reason)
			id = "dlq " + id
		}
		msg.Header.Set(jetstream.MsgIDHeader, id)
		f, perr := w.js.PublishMsgAsync(msg)
		if perr != nil {
			err = perr
			break
		}
		futs = append(futs, f)
	}
	timeout := time.After(durableTimeout)
	for _, f := range futs {
		select {
		case <-f.Ok():
		case perr := <-f.Err():
			err = errors.Join(err, perr)
		case <-timeout:
			err = errors.Join(err, errors.New("store timed out"))
		}
	}
	if err != nil {
		w.opts.Logger.Warn("store failed", "subject", subject, "err", err)
		_ = m.Nak()
		return
	}
	_ = m.Ack()
}
