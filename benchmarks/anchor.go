package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway"
)

// An anchor is what the suite's NATS server stores on its own, measured in
// the same run as the durable rows that depend on it: the shapes of `nats
// bench js pub` (one client publishing asynchronously in batches of 100,
// waiting for the batch's acks before the next), written with nats.go's
// jetstream package in this process, into a stream of its own (file
// storage, one replica, the durable streams' duplicate window), deleted
// after each run. A row's rate is stored messages per second, its latency
// that of a batch of 100 (first publish to last ack), its CPU per stored
// message.
type anchorShape struct {
	size   int  // bytes per message
	dedupe bool // a unique Nats-Msg-Id on every message
}

const (
	// anchorBatch is the messages published before waiting for their
	// acks: `nats bench js pub`'s default --batch.
	anchorBatch = 100
	// anchorStream and anchorSubject hold the anchors' messages.
	anchorStream  = "bench-anchor"
	anchorSubject = "anchor.pub"
	// frameEvents is how many events a full batch frame holds (the
	// gateway's --batch-max-events): the 16 KB anchor's messages are such
	// frames, so its events-equivalent rate is its rate times this.
	frameEvents = gateway.DefaultBatchMaxEvents
)

// measureAnchor runs an anchor shape against the suite's NATS server:
// warm-up, then the measured window, with the NATS server's CPU (and this
// process's, the publisher) read over the window.
func (s *suite) measureAnchor(ctx context.Context, spec runSpec, sys *system) (*Measurement, error) {
	shape := *spec.v.anchor
	nc, err := nats.Connect(s.nats.addr, nats.Name("bench-anchor"))
	if err != nil {
		return nil, fmt.Errorf("anchor: %w", err)
	}
	defer nc.Close()
	var pubErrs atomic.Uint64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*anchorBatch),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { pubErrs.Add(1) }))
	if err != nil {
		return nil, fmt.Errorf("anchor: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := js.DeleteStream(sctx, anchorStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("anchor: deleting the previous stream: %w", err)
	}
	if _, err := js.CreateStream(sctx, jetstream.StreamConfig{Name: anchorStream, Subjects: []string{anchorSubject},
		Storage: jetstream.FileStorage, Replicas: 1, Duplicates: bus.DefaultDuplicates}); err != nil {
		return nil, fmt.Errorf("anchor: creating the stream: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, anchorStream)
	}()
	payload := make([]byte, shape.size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	var seq uint64
	hist := loadgen.NewHistogram()
	// publish sends batches until d has passed and returns the messages
	// the stream acknowledged.
	publish := func(d time.Duration, measured bool) (uint64, error) {
		var n uint64
		for end := time.Now().Add(d); time.Now().Before(end); {
			start := time.Now()
			for range anchorBatch {
				m := &nats.Msg{Subject: anchorSubject, Data: payload}
				if shape.dedupe {
					seq++
					m.Header = nats.Header{jetstream.MsgIDHeader: {strconv.FormatUint(seq, 10)}}
				}
				if _, err := js.PublishMsgAsync(m); err != nil {
					return n, fmt.Errorf("anchor: publish: %w", err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				return n, errors.New("anchor: acks not in within 30s")
			case <-ctx.Done():
				return n, ctx.Err()
			}
			if measured {
				_ = hist.RecordValue(time.Since(start).Microseconds())
			}
			n += anchorBatch
		}
		return n, nil
	}
	if _, err := publish(s.o.Warmup, false); err != nil {
		return nil, err
	}
	cpu := newCPUSampler(sys.procs)
	failedBefore := pubErrs.Load()
	cpu.sample(true)
	started := time.Now()
	n, err := publish(orDefault(spec.duration, s.o.Duration), true)
	elapsed := time.Since(started)
	cpu.sample(false)
	if err != nil {
		return nil, err
	}
	failed := pubErrs.Load() - failedBefore
	n -= min(n, failed)
	res := &loadgen.Result{Label: fmt.Sprintf("%s #%d", spec.v.name, spec.round+1), Mode: loadgen.Closed, Conns: 1,
		Streams: anchorBatch, Batch: 1, Duration: elapsed, Answered: n, Events: n, Errors: failed,
		Status: map[int]uint64{}, Hist: hist, Latency: loadgen.Summarize(hist)}
	if secs := elapsed.Seconds(); secs > 0 {
		res.ReqPerSec, res.EventsPerSec = float64(n)/secs, float64(n)/secs
	}
	if s.o.Progress != nil {
		fmt.Fprintf(s.o.Progress, "%s: %s msgs/s stored, batch of %d p99 %.2f ms\n", res.Label, thousands(res.ReqPerSec),
			anchorBatch, res.Latency.P99)
	}
	return &Measurement{Variant: spec.v.name, System: sys.name, Round: spec.round, Started: started.UTC(), Load: res,
		CPU: cpu.result(n)}, nil
}
