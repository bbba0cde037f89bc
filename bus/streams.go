package bus

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/schemas"
)

// Stream limits a new stream gets when [StreamOptions] leaves them zero.
const (
	DefaultDuplicates       = 2 * time.Minute
	DefaultIngestMaxBytes   = 1 << 30
	DefaultEnrichedMaxAge   = 24 * time.Hour
	DefaultEnrichedMaxBytes = 1 << 30
	DefaultDLQMaxAge        = 7 * 24 * time.Hour
	DefaultDLQMaxBytes      = 256 << 20
)

// StreamOptions sets the streams of one pipeline. Delivery says which
// types the streams serve: each stream holds the subjects of the durable
// types alone. Every setting left zero keeps an existing stream's value and
// gives a new stream its default (one replica, file storage, the Default*
// limits): only a setting an operator gave changes an existing stream, so
// components started with different flags do not undo each other's. A
// negative MaxBytes means no limit.
type StreamOptions struct {
	// Delivery is the mode of each type: the streams hold the subjects of
	// the durable ones, and a stream that holds a core type's subject is
	// an error ([CapturedError]). The gateway and the workers set it from
	// their own delivery modes.
	Delivery Modes
	// Exact makes the streams' subjects exactly the durable types' ones:
	// subjects of the pipeline that no durable type needs (a core type's,
	// a wildcard) are removed, and reported in [Applied.Removed]. Without
	// it subjects are only ever added. For `sluice streams apply`.
	Exact bool
	// Replicas is the number of copies of each stream: 1 for a single
	// server, 3 for a cluster that must survive the loss of one node.
	Replicas int
	// Storage is file (the zero value) or memory, for a new stream.
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
	// Partitions is how many partitions each durable type's batches are
	// spread over by symbol ([schemas.Partition]). 0 or 1: one ingest
	// subject per type, <prefix>.ingest.<type>, which a group reads through
	// one consumer with many batches in flight (no order across them).
	// More: the subjects <prefix>.ingest.<type>.<partition> (the stream
	// holds <prefix>.ingest.<type>.*), each read by one consumer per group
	// with one batch in flight ([NewPartitions]): a symbol's events are
	// processed in ingest order. The ingest stream records the count in
	// its metadata ([MetadataPartitions]); see [Apply] for a stream that
	// holds another.
	Partitions int
}

// DefaultPartitions is the partition count of the commands' --partitions
// (the zero value of [StreamOptions.Partitions] means 1, no partitions).
// Chosen by measurement: see workers/PARTITIONS.md.
const DefaultPartitions = 4

// MaxPartitions bounds [StreamOptions.Partitions]: each partition is a
// consumer per group on the server, and a pull request per worker.
const MaxPartitions = 64

// MetadataPartitions is the ingest stream's metadata key that holds its
// partition count (absent: 1, one subject per type).
const MetadataPartitions = "sluice.partitions"

// partitions returns the partition count o stands for: 1 when unset.
func (o StreamOptions) partitions() int { return max(o.Partitions, 1) }

// orDefault returns v, or def when v is zero, with negative byte limits as
// the server's "no limit".
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	if v < 0 {
		return -1
	}
	return v
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
	case o.Partitions < 0 || o.Partitions > MaxPartitions:
		return fmt.Errorf("partitions %d: want 1 to %d", o.Partitions, MaxPartitions)
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

// Streams returns the configurations a new stream of the pipeline gets,
// in the order ingest, enriched, dlq, each over the subjects of o's
// durable types only (none when every type is core):
//
//   - ingest, <prefix>.ingest.<type> (<prefix>.ingest.<type>.* with more
//     than one partition, and the count in the metadata): work-queue
//     retention (a batch is removed once a worker group's consumer acks
//     it; one consumer per group, or per group and partition, with
//     filters that do not overlap), discard new past IngestMaxBytes.
//   - enriched, <prefix>.enriched.<type>.>: limits retention by
//     EnrichedMaxAge and EnrichedMaxBytes, discard old, direct get allowed
//     (for snapshots by symbol).
//   - dlq, <prefix>.dlq.<type>: limits retention by DLQMaxAge and
//     DLQMaxBytes, discard old.
//
// All three deduplicate by Nats-Msg-Id within Duplicates. Zero fields of o
// take their defaults.
func Streams(s schemas.Subjects, o StreamOptions) []jetstream.StreamConfig {
	sp := specs(s, o)
	out := make([]jetstream.StreamConfig, len(sp))
	for i := range sp {
		out[i] = sp[i].cfg
	}
	return out
}

// spec is one stream as [Apply] sees it: what a new stream gets, the
// settings o gave (the only ones that change an existing stream), and the
// stream's share of the pipeline's subjects.
type spec struct {
	cfg jetstream.StreamConfig
	// space is the pipeline's wildcard for this stream's role
	// (<prefix>.ingest.>): a subject outside it is not the pipeline's.
	space string
	// core holds the subjects of the core types, which the stream must not
	// capture.
	core []string
	// coreKinds are the types of core, index for index.
	coreKinds []schemas.Kind
	// set says which of replicas, duplicates, max age and max bytes o
	// gave.
	replicas, duplicates, maxAge, maxBytes bool
	// partitions is the ingest stream's partition count (0 for the
	// others).
	partitions int
}

func specs(s schemas.Subjects, o StreamOptions) []spec {
	p := s.Prefix()
	roles := []struct {
		role, what string
		subject    func(schemas.Kind) string
	}{
		{"ingest", "ingest batches, removed once a worker group acks them", s.Ingest},
		{"enriched", "enriched events, kept for replay", func(k schemas.Kind) string { return p + ".enriched." + k.String() + ".>" }},
		{"dlq", "dead letters with their reasons", s.DLQ},
	}
	out := make([]spec, len(roles))
	for i, r := range roles {
		sp := &out[i]
		sp.space = p + "." + r.role + ".>"
		sp.cfg = jetstream.StreamConfig{
			Name:        streamName(s, r.role),
			Description: "sluice " + r.what,
			Storage:     o.Storage,
			Replicas:    orDefault(o.Replicas, 1),
			Duplicates:  orDefault(o.Duplicates, DefaultDuplicates),
		}
		for _, k := range schemas.Kinds {
			if o.Delivery.Of(k) == ModeDurable {
				subj := r.subject(k)
				if i == 0 && o.partitions() > 1 {
					subj = s.IngestPartitions(k)
				}
				sp.cfg.Subjects = append(sp.cfg.Subjects, subj)
			} else {
				sp.core = append(sp.core, r.subject(k))
				sp.coreKinds = append(sp.coreKinds, k)
			}
		}
		sp.replicas, sp.duplicates = o.Replicas != 0, o.Duplicates != 0
	}
	in, en, dl := &out[0], &out[1], &out[2]
	in.cfg.Retention, in.cfg.Discard = jetstream.WorkQueuePolicy, jetstream.DiscardNew
	in.cfg.MaxBytes, in.maxBytes = orDefault(o.IngestMaxBytes, DefaultIngestMaxBytes), o.IngestMaxBytes != 0
	if in.partitions = o.partitions(); in.partitions > 1 {
		in.cfg.Metadata = map[string]string{MetadataPartitions: strconv.Itoa(in.partitions)}
	}

	en.cfg.Retention, en.cfg.Discard, en.cfg.AllowDirect = jetstream.LimitsPolicy, jetstream.DiscardOld, true
	en.cfg.MaxAge, en.maxAge = orDefault(o.EnrichedMaxAge, DefaultEnrichedMaxAge), o.EnrichedMaxAge != 0
	en.cfg.MaxBytes, en.maxBytes = orDefault(o.EnrichedMaxBytes, DefaultEnrichedMaxBytes), o.EnrichedMaxBytes != 0

	dl.cfg.Retention, dl.cfg.Discard = jetstream.LimitsPolicy, jetstream.DiscardOld
	dl.cfg.MaxAge, dl.maxAge = orDefault(o.DLQMaxAge, DefaultDLQMaxAge), o.DLQMaxAge != 0
	dl.cfg.MaxBytes, dl.maxBytes = orDefault(o.DLQMaxBytes, DefaultDLQMaxBytes), o.DLQMaxBytes != 0
	return out
}

// subjectsOverlap reports whether some subject matches both patterns a and
// b (with the * and > wildcards).
func subjectsOverlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(at) && i < len(bt); i++ {
		switch {
		case at[i] == ">" || bt[i] == ">":
			return true
		case at[i] != bt[i] && at[i] != "*" && bt[i] != "*":
			return false
		}
	}
	return len(at) == len(bt)
}

// subjectWithin reports whether every subject pattern a matches is matched
// by pattern b.
func subjectWithin(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i, t := range bt {
		switch {
		case t == ">":
			return i < len(at)
		case i >= len(at) || at[i] == ">":
			return false
		case t != "*" && at[i] != t:
			return false
		}
	}
	return len(at) == len(bt)
}
