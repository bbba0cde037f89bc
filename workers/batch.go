package workers

import (
	"context"

	"github.com/sluice-dev/sluice/schemas"
)

// Stage is one step of the pipeline a [Batch] runs through. The worker runs
// its built-in stages (validate, then enrich) and then Options.Stages, in
// order, on the goroutine that decoded the batch; a stage may reject events
// ([Batch.Reject]) or change their enriched form ([Batch.Enriched]).
//
// Process returns an error only when the batch as a whole cannot go on: the
// worker then counts it (sluice_worker_stage_errors_total), logs it and
// publishes nothing for the batch, no reply either, so that callers waiting
// for a result time out. To refuse single events, reject them instead.
//
// Process must not keep b or anything reached through it after it returns,
// and should not allocate per event: it runs on the hot path.
type Stage interface {
	Process(ctx context.Context, b *Batch) error
}

// StageFunc adapts a function to [Stage].
type StageFunc func(ctx context.Context, b *Batch) error

// Process calls f(ctx, b).
func (f StageFunc) Process(ctx context.Context, b *Batch) error { return f(ctx, b) }

// maxRetainEvents bounds the per-goroutine event storage kept between
// batches: a freak batch bigger than this does not pin its memory.
const maxRetainEvents = 4096

// Batch is one decoded batch frame as it runs through the stages. Events are
// indexed 0..Len()-1 in frame order.
//
// A Batch is owned by one processing goroutine and reused for the next
// batch: it and everything reached through it (events, their strings, raw
// bytes, errors) are valid only during [Stage.Process]. The strings alias the
// NATS message; a stage that keeps any copies it.
type Batch struct {
	// Kind is the kind of the ingest subject the batch arrived on. It names
	// the dead-letter subject and the metric labels; an event's own kind
	// names its enriched subject.
	Kind schemas.Kind
	// Now is the batch's processing time in Unix nanoseconds, read once per
	// batch: validation and enriched_at use it.
	Now int64

	n      int
	events []schemas.Event
	raw    [][]byte
	errs   [][]schemas.FieldError
	out    []schemas.Enriched
}

// Len returns the number of decoded events.
func (b *Batch) Len() int { return b.n }

// Event returns event i as decoded.
func (b *Batch) Event(i int) *schemas.Event { return &b.events[i] }

// Raw returns event i's bytes as received, the value that a dead letter
// carries.
func (b *Batch) Raw(i int) []byte { return b.raw[i] }

// Errors returns the failures recorded for event i: none means the event is
// accepted so far.
func (b *Batch) Errors(i int) []schemas.FieldError { return b.errs[i] }

// Rejected reports whether event i has failures recorded.
func (b *Batch) Rejected(i int) bool { return len(b.errs[i]) > 0 }

// Reject records a failure of event i: it goes to the dead-letter subject,
// with the first failure's code as its reason, and its result (if it waits)
// is 422 with every failure.
func (b *Batch) Reject(i int, fe schemas.FieldError) { b.errs[i] = append(b.errs[i], fe) }

// Enriched returns the enriched form of event i. It is meaningful only for
// an event not rejected, after the built-in enrich stage: that is, in
// Options.Stages. What it holds when the worker publishes is what is
// published.
func (b *Batch) Enriched(i int) *schemas.Enriched { return &b.out[i] }

// slot makes room for one more event and returns its index. Storage of
// earlier batches is reused; errors are cleared.
func (b *Batch) slot() int {
	i := b.n
	if i == len(b.events) {
		b.events = append(b.events, schemas.Event{})
		b.raw = append(b.raw, nil)
		b.errs = append(b.errs, nil)
		b.out = append(b.out, schemas.Enriched{})
	}
	b.errs[i] = b.errs[i][:0]
	b.n++
	return i
}

// reset prepares b for the next batch, freeing storage past
// maxRetainEvents. Slots keep referring to the previous message until they
// are overwritten: each goroutine pins at most one old message.
func (b *Batch) reset(kind schemas.Kind, now int64) {
	if len(b.events) > maxRetainEvents {
		*b = Batch{}
	}
	b.Kind, b.Now, b.n = kind, now, 0
}
