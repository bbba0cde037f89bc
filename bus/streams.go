package bus

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/schemas"
)

// Stream limits used when [StreamOptions] leaves them zero.
const (
	DefaultDuplicates       = 2 * time.Minute
	DefaultIngestMaxBytes   = 1 << 30
	DefaultEnrichedMaxAge   = 24 * time.Hour
	DefaultEnrichedMaxBytes = 1 << 30
	DefaultDLQMaxAge        = 7 * 24 * time.Hour
	DefaultDLQMaxBytes      = 256 << 20
)

// StreamOptions sets the streams of one pipeline. The zero value means the
// defaults: one replica, file storage and the Default* limits. A negative
// MaxBytes means no limit.
type StreamOptions struct {
	// Replicas is the number of copies of each stream: 1 for a single
	// server, 3 for a cluster that must survive the loss of one node.
	Replicas int
	// Storage is file (the zero value) or memory.
	Storage jetstream.StorageType
	// Duplicates is the window within which a second message with the same
	// Nats-Msg-Id is not stored again (ingest, enriched and dlq).
	Duplicates time.Duration
	// IngestMaxBytes bounds the backlog of batches no worker has acked yet.
	// A full ingest stream refuses new batches (discard new): a batch it
	// acknowledged is never dropped to make room.
	IngestMaxBytes int64
	// EnrichedMaxAge and EnrichedMaxBytes bound the enriched stream kept for
	// replay; past either, the oldest events are dropped (discard old).
	EnrichedMaxAge   time.Duration
	EnrichedMaxBytes int64
	// DLQMaxAge and DLQMaxBytes bound the dead-letter stream (discard old).
	DLQMaxAge   time.Duration
	DLQMaxBytes int64
}

func (o *StreamOptions) setDefaults() {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Duplicates == 0 {
		o.Duplicates = DefaultDuplicates
	}
	if o.IngestMaxBytes == 0 {
		o.IngestMaxBytes = DefaultIngestMaxBytes
	}
	if o.EnrichedMaxAge == 0 {
		o.EnrichedMaxAge = DefaultEnrichedMaxAge
	}
	if o.EnrichedMaxBytes == 0 {
		o.EnrichedMaxBytes = DefaultEnrichedMaxBytes
	}
	if o.DLQMaxAge == 0 {
		o.DLQMaxAge = DefaultDLQMaxAge
	}
	if o.DLQMaxBytes == 0 {
		o.DLQMaxBytes = DefaultDLQMaxBytes
	}
	for _, b := range []*int64{&o.IngestMaxBytes, &o.EnrichedMaxBytes, &o.DLQMaxBytes} {
		if *b < 0 {
			*b = -1 // the server's "no limit"
		}
	}
}

// Validate reports options that no stream can have.
func (o StreamOptions) Validate() error {
	switch {
	case o.Replicas < 0 || o.Replicas > 5:
		return fmt.Errorf("stream replicas %d: want 1 to 5", o.Replicas)
	case o.Storage != jetstream.FileStorage && o.Storage != jetstream.MemoryStorage:
		return fmt.Errorf("stream storage %v: want file or memory", o.Storage)
	case o.Duplicates < 0 || o.EnrichedMaxAge < 0 || o.DLQMaxAge < 0:
		return fmt.Errorf("stream durations must not be negative")
	}
	return nil
}

// IngestStream names the ingest stream of the pipeline with subjects s: the
// prefix with '.' mapped to '_' (as [schemas.SymbolToken] maps it, so two
// prefixes never share a name), then "-ingest". The default prefix gives
// "sluice-ingest".
func IngestStream(s schemas.Subjects) string { return streamName(s, "ingest") }

// EnrichedStream names the enriched stream: the prefix as in
// [IngestStream], then "-enriched".
func EnrichedStream(s schemas.Subjects) string { return streamName(s, "enriched") }

// DLQStream names the dead-letter stream: the prefix as in [IngestStream],
// then "-dlq".
func DLQStream(s schemas.Subjects) string { return streamName(s, "dlq") }

func streamName(s schemas.Subjects, role string) string {
	// Stream names are also file names on the server: no path separators.
	tok := strings.NewReplacer("/", "%2F", `\`, "%5C").Replace(schemas.SymbolToken(s.Prefix()))
	return tok + "-" + role
}

// Streams returns the configurations of the pipeline's three streams, in
// the order ingest, enriched, dlq:
//
//   - ingest, <prefix>.ingest.>: work-queue retention (a batch is removed
//     once a worker group's consumer acks it; one consumer per group, with
//     filters that do not overlap), discard new past IngestMaxBytes.
//   - enriched, <prefix>.enriched.>: limits retention by EnrichedMaxAge and
//     EnrichedMaxBytes, discard old, direct get allowed (for snapshots by
//     symbol).
//   - dlq, <prefix>.dlq.>: limits retention by DLQMaxAge and DLQMaxBytes,
//     discard old.
//
// All three deduplicate by Nats-Msg-Id within Duplicates. Zero fields of o
// take their defaults.
func Streams(s schemas.Subjects, o StreamOptions) []jetstream.StreamConfig {
	o.setDefaults()
	p := s.Prefix()
	base := func(name, subject, what string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: "sluice " + what,
			Subjects:    []string{subject},
			Storage:     o.Storage,
			Replicas:    o.Replicas,
			Duplicates:  o.Duplicates,
		}
	}
	ingest := base(IngestStream(s), p+".ingest.>", "ingest batches, removed once a worker group acks them")
	ingest.Retention = jetstream.WorkQueuePolicy
	ingest.Discard = jetstream.DiscardNew
	ingest.MaxBytes = o.IngestMaxBytes

	enriched := base(EnrichedStream(s), p+".enriched.>", "enriched events, kept for replay")
	enriched.Retention = jetstream.LimitsPolicy
	enriched.Discard = jetstream.DiscardOld
	enriched.MaxAge = o.EnrichedMaxAge
	enriched.MaxBytes = o.EnrichedMaxBytes
	enriched.AllowDirect = true

	dlq := base(DLQStream(s), p+".dlq.>", "dead letters with their reasons")
	dlq.Retention = jetstream.LimitsPolicy
	dlq.Discard = jetstream.DiscardOld
	dlq.MaxAge = o.DLQMaxAge
	dlq.MaxBytes = o.DLQMaxBytes

	return []jetstream.StreamConfig{ingest, enriched, dlq}
}
