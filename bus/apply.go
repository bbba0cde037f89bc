package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
}

// FieldError is the error of [Apply] for a stream that exists with a
// configuration it refuses to change. It wraps [ErrIncompatibleStream].
type FieldError struct {
	Stream string
	Field  string
	Have   string // the existing stream's value
	Want   string // the value Apply would set
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("stream %q exists with %s %s, want %s: %v (not changed; delete the stream or use another prefix)",
		e.Stream, e.Field, e.Have, e.Want, ErrIncompatibleStream)
}

// Unwrap returns [ErrIncompatibleStream].
func (e *FieldError) Unwrap() error { return ErrIncompatibleStream }

// Apply creates the pipeline's streams ([Streams] of s and o) that do not
// exist and updates those that differ, in order, stopping at the first
// error; applied again with the same options it changes nothing.
//
// Apply owns the fields that [Streams] sets, in two classes:
//
//   - refused: subjects, retention, storage and discard policy, and an
//     existing stream that is a mirror, has sources or is sealed. Changing
//     them would change what a stored message means (a limits stream turned
//     work-queue drops what replay needs; discard old on ingest drops
//     batches already acknowledged), and the server cannot change some of
//     them at all. A difference is a [*FieldError] naming the field and both
//     values, and the stream is left as it was.
//   - updated in place: max age, max bytes, duplicate window, replicas,
//     direct get and the description. Shrinking max age or max bytes drops
//     the oldest messages, as the server does for any stream; a replica
//     change is the server's to allow (a single server refuses more than
//     one).
//
// Every other field (max messages, compression, metadata, ...) is left as
// an operator set it. Apply retries while JetStream is temporarily
// unavailable (no responders, a 503, a request timeout: a cluster electing
// its leaders) until ctx is done, so give ctx a deadline.
func Apply(ctx context.Context, js jetstream.JetStream, s schemas.Subjects, o StreamOptions) ([]Applied, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var out []Applied
	for _, want := range Streams(s, o) {
		a, err := applyStream(ctx, js, want)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

// applyStream creates or updates one stream, retrying temporary failures.
func applyStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (Applied, error) {
	backoff := 50 * time.Millisecond
	for {
		a, err := applyOnce(ctx, js, want)
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

func applyOnce(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (Applied, error) {
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
	upd, changed := merge(have, want)
	if len(changed) == 0 {
		a.Action = Unchanged
		return a, nil
	}
	if _, err := js.UpdateStream(rctx, upd); err != nil {
		return a, fmt.Errorf("updating stream %q (%v): %w", want.Name, changed, err)
	}
	a.Action, a.Changed = Updated, changed
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
	case !sameSet(have.Subjects, want.Subjects):
		return refuse("subjects", have.Subjects, want.Subjects)
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

// merge returns have with the updatable fields of want, and the names of
// those that changed.
func merge(have, want jetstream.StreamConfig) (jetstream.StreamConfig, []string) {
	var changed []string
	set := func(name string, differs bool) {
		if differs {
			changed = append(changed, name)
		}
	}
	set("max_age", have.MaxAge != want.MaxAge)
	set("max_bytes", have.MaxBytes != want.MaxBytes)
	set("duplicate_window", have.Duplicates != want.Duplicates)
	set("replicas", have.Replicas != want.Replicas)
	set("allow_direct", have.AllowDirect != want.AllowDirect)
	set("description", have.Description != want.Description)
	upd := have
	upd.MaxAge, upd.MaxBytes, upd.Duplicates = want.MaxAge, want.MaxBytes, want.Duplicates
	upd.Replicas, upd.AllowDirect, upd.Description = want.Replicas, want.AllowDirect, want.Description
	return upd, changed
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

// ApplyIngest is [Apply] for the ingest stream alone: what a gateway needs
// before it publishes batches durably. It leaves the enriched and
// dead-letter streams, whose limits the workers and operators set, alone.
func ApplyIngest(ctx context.Context, js jetstream.JetStream, s schemas.Subjects, o StreamOptions) (Applied, error) {
	if err := o.Validate(); err != nil {
		return Applied{}, err
	}
	name := IngestStream(s)
	for _, want := range Streams(s, o) {
		if want.Name == name {
			return applyStream(ctx, js, want)
		}
	}
	return Applied{}, fmt.Errorf("no ingest stream %q among the pipeline's streams", name)
}
