package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/schemas"
)

// Action says what [Apply] did to one stream.
type Action string

// The actions of [Apply].
const (
	Created   Action = "created"
	Updated   Action = "updated"
	Unchanged Action = "unchanged"
)

// Applied is the outcome of [Apply] for one stream: what it did and, for
// [Updated], the names of the fields it changed.
type Applied struct {
	Stream  string
	Action  Action
	Changed []string
	// Added and Removed are the subjects an update added to the stream
	// and, with [StreamOptions.Exact], removed from it.
	Added, Removed []string
}

// FieldError is the error of [Apply] for a stream that exists with a
// configuration it refuses to change. It wraps [ErrIncompatibleStream].
type FieldError struct {
	Stream string
	Field  string
	Have   string // the existing stream's value
	Want   string // the value Apply would set
	// Hint says what to do instead; empty: delete the stream or use
	// another prefix.
	Hint string
}

func (e *FieldError) Error() string {
	hint := e.Hint
	if hint == "" {
		hint = "delete the stream or use another prefix"
	}
	return fmt.Sprintf("stream %q exists with %s %s, want %s: %v (not changed; %s)",
		e.Stream, e.Field, e.Have, e.Want, ErrIncompatibleStream, hint)
}

// Unwrap returns [ErrIncompatibleStream].
func (e *FieldError) Unwrap() error { return ErrIncompatibleStream }

// CapturedError is the error of [Apply], [ApplyIngest] and [CheckCaptured]
// for a stream of the pipeline that captures the subject of a type whose
// delivery is core: the stream would store that type's core messages,
// which no consumer reads, until it is full, and answer each with an ack to
// its reply subject. It wraps [ErrIncompatibleStream].
type CapturedError struct {
	Stream  string
	Subject string       // the stream's subject that captures Kind's
	Kind    schemas.Kind // the core type
	Target  string       // Kind's subject in the stream's role
}

func (e *CapturedError) Error() string {
	return fmt.Sprintf("stream %q captures %s with its subject %s, but type %s is core here: its core messages would be stored "+
		"and never read (%v). Run every component with the same --delivery, or run \"sluice streams apply --delivery ...\" "+
		"with the intended modes to remove the subject", e.Stream, e.Target, e.Subject, e.Kind, ErrIncompatibleStream)
}

// Unwrap returns [ErrIncompatibleStream].
func (e *CapturedError) Unwrap() error { return ErrIncompatibleStream }

// Apply creates the pipeline's streams ([Streams] of s and o) that do not
// exist and updates those that differ, in order, stopping at the first
// error; applied again with the same options it changes nothing. It is an
// error when o.Delivery has no durable type.
//
// Apply owns the fields that [Streams] sets, in three classes:
//
//   - subjects: a stream holds the subjects of the durable types. One that
//     lacks some gets them added (the server refuses when another stream
//     holds them). Apply never removes a subject unless o.Exact: a subject
//     of the pipeline's (under <prefix>.ingest.> for the ingest stream)
//     that no durable type needs is kept, unless it captures a core type's
//     subject, which is a [*CapturedError]; a subject outside the
//     pipeline's is a [*FieldError]. With o.Exact the pipeline's subjects
//     no durable type needs are removed.
//   - partitions ([StreamOptions.Partitions], the ingest stream's
//     [MetadataPartitions]): a stream of one partition (or one created
//     before partitions existed) gets the partition subjects added and
//     keeps its <prefix>.ingest.<type> until an Exact apply removes it
//     (the workers drain it meanwhile). Any other change of the count is
//     a [*FieldError] naming both counts, unless o.Exact and the stream
//     is empty: it would move
//     symbols to other partitions while batches of theirs wait in the
//     old ones, and components that disagree on the count would publish
//     where no consumer reads.
//   - refused: retention, storage and discard policy, and an existing
//     stream that is a mirror, has sources or is sealed. Changing them
//     would change what a stored message means (a limits stream turned
//     work-queue drops what replay needs; discard old on ingest drops
//     batches already acknowledged), and the server cannot change some of
//     them at all. A difference is a [*FieldError] naming the field and both
//     values, and the stream is left as it was.
//   - updated in place when o sets them (non-zero): max age, max bytes,
//     duplicate window, replicas; a zero one keeps the stream's value.
//     Direct get and the description are always set. Shrinking max age
//     or max bytes drops the oldest messages, as the server does for any
//     stream; a replica change is the server's to allow (a single server
//     refuses more than one).
//
// Every other field (max messages, compression, metadata, ...) is left as
// an operator set it. Apply retries while JetStream is temporarily
// unavailable (no responders, a 503, a request timeout: a cluster electing
// its leaders) until ctx is done, so give ctx a deadline.
func Apply(ctx context.Context, js jetstream.JetStream, s schemas.Subjects, o StreamOptions) ([]Applied, error) {
	if err := o.validateApply(); err != nil {
		return nil, err
	}
	var out []Applied
	for _, sp := range specs(s, o) {
		a, err := applyStream(ctx, js, sp, o.Exact)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (o StreamOptions) validateApply() error {
	if err := o.Validate(); err != nil {
		return err
	}
	if !o.Delivery.Any(ModeDurable) {
		return fmt.Errorf("no durable type in delivery %s: the streams serve durable types alone", o.Delivery)
	}
	return nil
}

// applyStream creates or updates one stream, retrying temporary failures.
func applyStream(ctx context.Context, js jetstream.JetStream, sp spec, exact bool) (Applied, error) {
	want := sp.cfg
	backoff := 50 * time.Millisecond
	for {
		a, err := applyOnce(ctx, js, sp, exact)
		if err == nil || !temporary(ctx, err) {
			return a, err
		}
		select {
		case <-ctx.Done():
			return a, fmt.Errorf("applying stream %q: %w (last error: %v)", want.Name, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func applyOnce(ctx context.Context, js jetstream.JetStream, sp spec, exact bool) (Applied, error) {
	want := sp.cfg
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	a := Applied{Stream: want.Name}
	st, err := js.Stream(rctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(rctx, want); err != nil {
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return a, err // created meanwhile: temporary, look again
			}
			return a, fmt.Errorf("creating stream %q: %w", want.Name, err)
		}
		a.Action = Created
		return a, nil
	}
	if err != nil {
		return a, fmt.Errorf("looking up stream %q: %w", want.Name, err)
	}
	have := st.CachedInfo().Config
	if err := compatible(have, want); err != nil {
		return a, err
	}
	if err := checkPartitions(have, st.CachedInfo().State.Msgs, sp, exact); err != nil {
		return a, err
	}
	if err := checkUndrained(rctx, st, have, sp, exact); err != nil {
		return a, err
	}
	subjects, added, removed, err := reconcile(have.Subjects, sp, exact)
	if err != nil {
		return a, err
	}
	upd, changed := merge(have, sp)
	if len(added)+len(removed) > 0 {
		upd.Subjects = subjects
		changed = append([]string{"subjects"}, changed...)
	}
	if len(changed) == 0 {
		a.Action = Unchanged
		return a, nil
	}
	if _, err := js.UpdateStream(rctx, upd); err != nil {
		return a, fmt.Errorf("updating stream %q (%v): %w", want.Name, changed, err)
	}
	a.Action, a.Changed, a.Added, a.Removed = Updated, changed, added, removed
	return a, nil
}

// temporary reports whether err may pass if applied again, while ctx lives.
func temporary(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		return true
	}
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil {
		return jsErr.APIError().Code == 503
	}
	return false
}

// compatible returns a [*FieldError] for the first refused difference.
func compatible(have, want jetstream.StreamConfig) error {
	refuse := func(field string, h, w any) error {
		return &FieldError{Stream: want.Name, Field: field, Have: fmt.Sprint(h), Want: fmt.Sprint(w)}
	}
	switch {
	case have.Retention != want.Retention:
		return refuse("retention", have.Retention, want.Retention)
	case have.Storage != want.Storage:
		return refuse("storage", have.Storage, want.Storage)
	case have.Discard != want.Discard:
		return refuse("discard", have.Discard, want.Discard)
	case have.Mirror != nil:
		return refuse("mirror", have.Mirror.Name, "none")
	case len(have.Sources) > 0:
		return refuse("sources", len(have.Sources), 0)
	case have.Sealed:
		return refuse("sealed", true, false)
	}
	return nil
}

// reconcile returns the subjects the stream with subjects have gets for
// sp: have's, with sp's missing ones added and, when exact, the pipeline's
// ones sp does not need removed. A subject outside the pipeline's is a
// [*FieldError]; without exact, one that captures a core type's subject is
// a [*CapturedError].
func reconcile(have []string, sp spec, exact bool) (subjects, added, removed []string, err error) {
	for _, h := range have {
		if slices.Contains(sp.cfg.Subjects, h) {
			subjects = append(subjects, h)
			continue
		}
		if !subjectWithin(h, sp.space) {
			return nil, nil, nil, &FieldError{Stream: sp.cfg.Name, Field: "subjects", Have: fmt.Sprint(have), Want: fmt.Sprint(sp.cfg.Subjects)}
		}
		if exact {
			removed = append(removed, h)
			continue
		}
		if err := captured(sp, h); err != nil {
			return nil, nil, nil, err
		}
		subjects = append(subjects, h)
	}
	for _, w := range sp.cfg.Subjects {
		if !slices.ContainsFunc(subjects, func(h string) bool { return subjectWithin(w, h) }) {
			subjects = append(subjects, w)
			added = append(added, w)
		}
	}
	return subjects, added, removed, nil
}

// captured returns a [*CapturedError] when the stream subject h captures a
// core type's subject of sp.
func captured(sp spec, h string) error {
	for i, c := range sp.core {
		if subjectsOverlap(h, c) {
			return &CapturedError{Stream: sp.cfg.Name, Subject: h, Kind: sp.coreKinds[i], Target: c}
		}
	}
	return nil
}

// merge returns have with the updatable fields of sp that its options set
// (and the description and direct get, always), and the names of those
// that changed.
func merge(have jetstream.StreamConfig, sp spec) (jetstream.StreamConfig, []string) {
	want := sp.cfg
	var changed []string
	upd := have
	set := func(name string, given, differs bool, apply func()) {
		if given && differs {
			changed = append(changed, name)
			apply()
		}
	}
	set("max_age", sp.maxAge, have.MaxAge != want.MaxAge, func() { upd.MaxAge = want.MaxAge })
	set("max_bytes", sp.maxBytes, have.MaxBytes != want.MaxBytes, func() { upd.MaxBytes = want.MaxBytes })
	set("duplicate_window", sp.duplicates, have.Duplicates != want.Duplicates, func() { upd.Duplicates = want.Duplicates })
	set("replicas", sp.replicas, have.Replicas != want.Replicas, func() { upd.Replicas = want.Replicas })
	set("allow_direct", true, have.AllowDirect != want.AllowDirect, func() { upd.AllowDirect = want.AllowDirect })
	set("description", true, have.Description != want.Description, func() { upd.Description = want.Description })
	if sp.partitions > 0 {
		set("partitions", true, StreamPartitions(have) != sp.partitions, func() {
			upd.Metadata = maps.Clone(have.Metadata)
			if upd.Metadata == nil {
				upd.Metadata = make(map[string]string, 1)
			}
			upd.Metadata[MetadataPartitions] = strconv.Itoa(sp.partitions)
			if sp.partitions == 1 {
				delete(upd.Metadata, MetadataPartitions)
			}
		})
	}
	return upd, changed
}

// StreamPartitions returns the partition count an ingest stream's
// configuration records ([MetadataPartitions]): 1 when it records none.
func StreamPartitions(cfg jetstream.StreamConfig) int {
	if n, err := strconv.Atoi(cfg.Metadata[MetadataPartitions]); err == nil && n > 1 {
		return n
	}
	return 1
}

// checkPartitions returns a [*FieldError] when the ingest stream have,
// holding msgs messages, records another partition count than sp's and
// the change is not the upgrade from one partition; exact allows it on an
// empty stream only (batches waiting in a partition no consumer reads any
// more would stay there).
func checkPartitions(have jetstream.StreamConfig, msgs uint64, sp spec, exact bool) error {
	h := StreamPartitions(have)
	if sp.partitions == 0 || h == sp.partitions || h == 1 || exact && msgs == 0 {
		return nil
	}
	hint := fmt.Sprintf("run every gateway and worker with --partitions %d, or, once the stream is drained, "+
		"\"sluice streams apply --partitions %d\" to change it", h, sp.partitions)
	if exact {
		hint = fmt.Sprintf("it holds %d batches: stop the gateways, let the workers drain it, then apply again", msgs)
	}
	return &FieldError{Stream: sp.cfg.Name, Field: "partitions", Have: strconv.Itoa(h), Want: strconv.Itoa(sp.partitions), Hint: hint}
}

// checkUndrained returns a [*FieldError] when an exact apply would remove
// an unpartitioned ingest subject (<prefix>.ingest.<type>, kept by the
// upgrade in place) of the partitioned ingest stream st while batches
// wait on it: the workers drain that subject only while the stream holds
// it, so its batches would stay unread.
func checkUndrained(ctx context.Context, st jetstream.Stream, have jetstream.StreamConfig, sp spec, exact bool) error {
	if !exact || sp.partitions < 2 || st.CachedInfo().State.Msgs == 0 {
		return nil
	}
	for _, w := range sp.cfg.Subjects {
		legacy, ok := strings.CutSuffix(w, ".*")
		if !ok || !slices.Contains(have.Subjects, legacy) {
			continue
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(legacy))
		if err != nil {
			return fmt.Errorf("counting the batches on %q of stream %q: %w", legacy, sp.cfg.Name, err)
		}
		if n := info.State.Subjects[legacy]; n > 0 {
			return &FieldError{Stream: sp.cfg.Name, Field: "partitions", Have: strconv.Itoa(StreamPartitions(have)),
				Want: strconv.Itoa(sp.partitions), Hint: fmt.Sprintf("%d batches wait on %s, which this apply would remove "+
					"and no worker would read any more: let workers with --partitions %d drain it, then apply again",
					n, legacy, sp.partitions)}
		}
	}
	return nil
}

// ApplyIngest is [Apply] for the ingest stream alone: what a gateway needs
// before it publishes batches durably. It leaves the enriched and
// dead-letter streams, whose limits the workers and operators set, alone.
func ApplyIngest(ctx context.Context, js jetstream.JetStream, s schemas.Subjects, o StreamOptions) (Applied, error) {
	if err := o.validateApply(); err != nil {
		return Applied{}, err
	}
	return applyStream(ctx, js, specs(s, o)[0], o.Exact)
}

// CheckCaptured returns a [*CapturedError] when one of the named streams of
// the pipeline exists and captures the subject of a type that delivery
// has core: what a component whose types are all core checks at start (one
// request per stream). A stream that does not exist, or a server without
// JetStream, is no error; any other failure to look is returned wrapped.
func CheckCaptured(ctx context.Context, js jetstream.JetStream, s schemas.Subjects, delivery Modes, streams ...string) error {
	for _, sp := range specs(s, StreamOptions{Delivery: delivery}) {
		if !slices.Contains(streams, sp.cfg.Name) || len(sp.core) == 0 {
			continue
		}
		st, err := js.Stream(ctx, sp.cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
			errors.Is(err, nats.ErrNoResponders) {
			continue
		}
		if err != nil {
			return fmt.Errorf("looking up stream %q: %w", sp.cfg.Name, err)
		}
		for _, h := range st.CachedInfo().Config.Subjects {
			if err := captured(sp, h); err != nil {
				return err
			}
		}
	}
	return nil
}
