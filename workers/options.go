package workers

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops/tracing"
	"github.com/sluice-dev/sluice/schemas"
)

// Defaults of [Options].
const (
	// DefaultQueueLen is the default number of batches buffered between the
	// subscriptions and the processing goroutines.
	DefaultQueueLen = 1024
	// DefaultPendingMsgs is the default limit of batches a subscription
	// holds in the NATS client before it drops (and counts) new ones.
	DefaultPendingMsgs = 65536
	// DefaultPendingBytes is the default byte limit of the same buffer.
	DefaultPendingBytes = 256 << 20
	// DefaultNakDelay is how long a durable batch that failed waits before
	// its next delivery.
	DefaultNakDelay = time.Second
	// DefaultPartitionedAckWait is the AckWait of a group that reads a
	// partitioned ingest stream: a partition has one batch in flight, and
	// when the worker holding it dies the partition waits this long
	// before another worker gets the batch. A live worker keeps a slow
	// batch with in-progress acks every half of it.
	DefaultPartitionedAckWait = 5 * time.Second
)

// DefaultGroups maps the built-in worker groups to the event kinds they
// consume when Options.Kinds is empty.
var DefaultGroups = map[string][]schemas.Kind{
	"quotes": {schemas.KindQuote},
	"trades": {schemas.KindTrade},
}

// Options configure a [Worker]. The zero value of every field but Conn,
// Group and Enricher means its default.
type Options struct {
	// Conn is the NATS connection the worker subscribes and publishes on.
	// Required. The worker never closes it: [Worker.Shutdown] flushes it
	// and leaves it to its owner.
	Conn *nats.Conn
	// Group names the worker group, e.g. "quotes": the NATS queue group of
	// the ingest subscriptions, shared by every process of the group. One
	// subject token of A-Z a-z 0-9 _ -. Required.
	Group string
	// Kinds are the event kinds the group consumes, one ingest subscription
	// each. Default: DefaultGroups[Group]; required for other groups.
	Kinds []schemas.Kind
	// Subjects names the pipeline's subjects. The zero value is the default
	// prefix.
	Subjects schemas.Subjects
	// Enricher derives the enriched fields from reference data. Required.
	Enricher *enrich.Enricher
	// Limits are the time bounds of validation; zero means the defaults.
	Limits schemas.Limits
	// Stages run, in order, on every batch after the built-in validate and
	// enrich stages and before the worker publishes the outcome. Optional.
	Stages []Stage
	// Concurrency is the number of goroutines that process batches.
	// Default runtime.GOMAXPROCS(0), or, when a durable kind reads a
	// partitioned ingest stream (Streams.Partitions above 1), at least
	// the partition count: a partition has one batch in flight, which
	// spends most of its time waiting for its stores' acks, and one
	// goroutine per partition lets those waits overlap (the goroutines
	// still share GOMAXPROCS threads).
	Concurrency int
	// QueueLen is the number of received batches buffered between the
	// subscriptions and the processing goroutines. Past it, batches wait in
	// the subscriptions' pending buffers. Default [DefaultQueueLen].
	QueueLen int
	// PendingMsgs and PendingBytes bound what each subscription buffers in
	// the NATS client when the queue is full; past them NATS drops new
	// batches and the worker counts the drops
	// (sluice_worker_slow_consumer_drops_total). They bound the worker's
	// memory: raise them only with the memory to hold them. A negative value
	// means unlimited. Defaults [DefaultPendingMsgs], [DefaultPendingBytes].
	PendingMsgs  int
	PendingBytes int
	// ReportInterval is how often the worker publishes its load report on
	// <prefix>.load.<group> (gateways shed load by it and treat a worker
	// silent for three intervals as gone). Default
	// [DefaultReportInterval]; negative disables reports.
	ReportInterval time.Duration
	// StageCost adds a fixed CPU cost per event (a busy loop): a test knob
	// that makes workers slow on purpose for capacity tests. Zero in
	// production.
	StageCost time.Duration
	// StageDelay adds a downstream that takes this long per event, one
	// event at a time, without using CPU: a test knob that caps a worker at
	// 1/StageDelay events per second (whatever Concurrency), the way a slow
	// downstream would, without taking CPU from the processes that share a
	// small test machine with it. Zero in production.
	StageDelay time.Duration
	// Source is the CloudEvents source of the enriched events. Default
	// "sluice/worker/<group>".
	Source string
	// Now is the clock, in Unix nanoseconds, read once per batch for
	// validation and enriched_at. Default time.Now().UnixNano.
	Now func() int64
	// Logger receives the worker's logs; nothing is logged per event.
	// Default: discard.
	Logger *slog.Logger
	// Metrics receives the worker's metrics. Default metrics.NewSet().
	Metrics *metrics.Set
	// Tracing, when not nil, gives a span to each batch whose frame names
	// a sampled batch span (see package ops/tracing). Nil: no spans, at no
	// cost.
	Tracing *tracing.Provider

	// Delivery is the delivery mode of each kind. Core kinds (the zero
	// value) are queue-subscribed on core NATS as always. Durable kinds
	// are consumed from the ingest stream through the group's durable pull
	// consumer (named after Group), their enriched events and dead letters
	// are stored in the enriched and dead-letter streams before the batch
	// is acknowledged, and the worker applies the pipeline's three streams
	// ([bus.Apply] with Streams) at Start.
	Delivery bus.Modes
	// AckWait is how long a durable batch may stay unacknowledged before
	// the stream delivers it again; a batch still running at half of it
	// is kept with an in-progress ack. Default [bus.DefaultAckWait], or
	// [DefaultPartitionedAckWait] when Streams.Partitions is more than 1:
	// a partition whose batch was held by a worker that died (kill -9, a
	// lost connection) stalls until its AckWait has passed.
	AckWait time.Duration
	// MaxDeliver is how many times a durable batch is delivered: a batch
	// that still fails on its last delivery goes to <prefix>.dlq.<kind>
	// whole and is terminated. Default [bus.DefaultMaxDeliver].
	MaxDeliver int
	// Streams are the limits of the streams the worker applies when it has
	// durable kinds (its Delivery replaces Streams.Delivery). A limit left
	// zero keeps an existing stream's value (bus's default for a new one).
	// A worker without durable kinds checks instead that no stream
	// captures its core kinds' subjects ([bus.CheckCaptured]).
	Streams bus.StreamOptions
	// NakDelay is how long a durable batch whose outcome could not be
	// stored waits before it is delivered again. Default
	// [DefaultNakDelay].
	NakDelay time.Duration
}

func (o *Options) setDefaults() {
	if len(o.Kinds) == 0 {
		o.Kinds = DefaultGroups[o.Group]
	}
	if o.Concurrency == 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
		if o.Streams.Partitions > 1 && o.Delivery.Any(bus.ModeDurable) {
			o.Concurrency = max(o.Concurrency, o.Streams.Partitions)
		}
	}
	if o.ReportInterval == 0 {
		o.ReportInterval = DefaultReportInterval
	}
	if o.QueueLen == 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.PendingMsgs == 0 {
		o.PendingMsgs = DefaultPendingMsgs
	}
	if o.PendingBytes == 0 {
		o.PendingBytes = DefaultPendingBytes
	}
	if o.Source == "" {
		o.Source = "sluice/worker/" + o.Group
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixNano() }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.AckWait == 0 {
		o.AckWait = bus.DefaultAckWait
		if o.Streams.Partitions > 1 {
			o.AckWait = DefaultPartitionedAckWait
		}
	}
	if o.MaxDeliver == 0 {
		o.MaxDeliver = bus.DefaultMaxDeliver
	}
	if o.NakDelay == 0 {
		o.NakDelay = DefaultNakDelay
	}
}

// Validate reports the first problem of o, wrapping [ErrInvalidOptions], or
// nil. Zero values pass: they stand for the defaults.
func (o *Options) Validate() error {
	switch {
	case o.Conn == nil:
		return fmt.Errorf("%w: Conn is required", ErrInvalidOptions)
	case o.Enricher == nil || o.Enricher.Store == nil:
		return fmt.Errorf("%w: Enricher with a Store is required", ErrInvalidOptions)
	case !isToken(o.Group):
		return fmt.Errorf("%w: Group %q must be one subject token of A-Z a-z 0-9 _ -", ErrInvalidOptions, o.Group)
	case len(o.Kinds) == 0 && len(DefaultGroups[o.Group]) == 0:
		return fmt.Errorf("%w: Kinds is required for group %q (the built-in groups are quotes and trades)", ErrInvalidOptions, o.Group)
	case o.Concurrency < 0:
		return fmt.Errorf("%w: Concurrency %d is negative", ErrInvalidOptions, o.Concurrency)
	case o.QueueLen < 0:
		return fmt.Errorf("%w: QueueLen %d is negative", ErrInvalidOptions, o.QueueLen)
	case o.AckWait < 0 || o.MaxDeliver < 0 || o.NakDelay < 0:
		return fmt.Errorf("%w: AckWait %v, MaxDeliver %d and NakDelay %v must not be negative", ErrInvalidOptions, o.AckWait, o.MaxDeliver, o.NakDelay)
	case o.StageCost < 0 || o.StageDelay < 0:
		return fmt.Errorf("%w: StageCost %v and StageDelay %v must not be negative", ErrInvalidOptions, o.StageCost, o.StageDelay)
	}
	seen := make(map[schemas.Kind]bool, len(o.Kinds))
	for _, k := range o.Kinds {
		if k.CEType() == "" {
			return fmt.Errorf("%w: unknown kind %d in Kinds", ErrInvalidOptions, k)
		}
		if seen[k] {
			return fmt.Errorf("%w: kind %s listed twice in Kinds", ErrInvalidOptions, k)
		}
		seen[k] = true
	}
	for i, s := range o.Stages {
		if s == nil {
			return fmt.Errorf("%w: Stages[%d] is nil", ErrInvalidOptions, i)
		}
	}
	if err := o.Streams.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}

// isToken reports whether s is a non-empty run of A-Z a-z 0-9 _ -: safe as a
// subject token, a queue group name and a metric label value.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
