package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// replayFrom is where `sluice sub` starts reading the enriched stream:
// since a duration ago, from a stream sequence, or the last event of each
// symbol. The zero value means live only (no replay).
type replayFrom struct {
	since    time.Duration
	sinceSeq uint64
	last     bool
}

func (r replayFrom) set() bool { return r.since > 0 || r.sinceSeq > 0 || r.last }

// validate refuses more than one starting point.
func (r replayFrom) validate() error {
	n := 0
	for _, on := range []bool{r.since > 0, r.sinceSeq > 0, r.last} {
		if on {
			n++
		}
	}
	if n > 1 {
		return errors.New("--since, --since-seq and --last are exclusive")
	}
	if r.since < 0 {
		return fmt.Errorf("--since %v: want a positive duration", r.since)
	}
	return nil
}

// consumerConfig is the ordered consumer that reads subject from r's
// starting point, then goes on with new events.
func (r replayFrom) consumerConfig(subject string) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}
	switch {
	case r.last:
		// An enriched subject is one symbol of one type: the last message
		// of each subject is the last event of each symbol.
		cfg.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	case r.sinceSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = r.sinceSeq
	default:
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		start := time.Now().Add(-r.since)
		cfg.OptStartTime = &start
	}
	return cfg
}

// subReplay prints the enriched events of subject stored in the enriched
// stream from r's starting point, then the new ones as they are stored,
// until ctx ends or count events are printed.
func subReplay(ctx context.Context, nc *nats.Conn, subjects schemas.Subjects, subject string, r replayFrom, count int, log *slog.Logger) int {
	js, err := jetstream.New(nc)
	if err != nil {
		return fatal(log, "sub", err)
	}
	name := bus.EnrichedStream(subjects)
	cons, err := js.OrderedConsumer(ctx, name, r.consumerConfig(subject))
	if err != nil {
		return fatal(log, "sub", fmt.Errorf("reading stream %s (durable delivery stores enriched events there): %w", name, err))
	}
	it, err := cons.Messages()
	if err != nil {
		return fatal(log, "sub", err)
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	var buf []byte
	for seen := 0; count == 0 || seen < count; {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return 0
			}
			return fatal(log, "sub", err)
		}
		buf, err = schemas.AppendEventJSON(buf[:0], m.Data())
		if err != nil {
			log.Warn("undecodable event", "subject", m.Subject(), "err", err)
			continue
		}
		_, _ = out.Write(append(buf, '\n'))
		seen++
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			_ = out.Flush() // caught up: show it now
		}
	}
	return 0
}
