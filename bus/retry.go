package bus

import (
	"context"
	"fmt"
	"time"
)

// Defaults of [RetryOptions].
const (
	DefaultRetryAttempts = 3
	DefaultRetryBackoff  = 50 * time.Millisecond
)

// RetryOptions sets a [Retrier]. The zero value means the defaults.
type RetryOptions struct {
	// Attempts is the most retries of one message (default 3).
	Attempts int
	// Backoff is the wait before the first retry, doubled before each next
	// one up to a second (default 50 ms).
	Backoff time.Duration
}

// Retrier waits for publish acks and publishes again what failed with a
// [Retryable] error, while its [Budget] grants it. A message sent again
// carries the same header, so with [HeaderMsgID] set the stream stores it
// once even when the first attempt was stored and only its ack was lost.
type Retrier struct {
	p Publisher
	b *Budget
	o RetryOptions
}

// NewRetrier returns a retrier that publishes again through p, within b.
func NewRetrier(p Publisher, b *Budget, o RetryOptions) *Retrier {
	if o.Attempts <= 0 {
		o.Attempts = DefaultRetryAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultRetryBackoff
	}
	return &Retrier{p: p, b: b, o: o}
}

// Await waits for a, publishes the message again on a [Retryable] failure
// while attempts remain and the budget grants it, and returns the first
// success or the last failure. Every success is deposited in the budget. A
// failure the budget refused wraps [ErrRetryBudget] and the publish's own
// error. Await returns ctx's error when ctx ends first (the outcome is then
// unknown). Call it once per publish, from the goroutine that owns the
// message: each call retries on its own, and other waiters on a see only
// its first outcome, not the retries'.
func (r *Retrier) Await(ctx context.Context, a Ack) (Receipt, error) {
	backoff := r.o.Backoff
	for attempt := 0; ; attempt++ {
		rc, err := a.Wait(ctx)
		if err == nil {
			r.b.Success()
			return rc, nil
		}
		if !Retryable(err) || ctx.Err() != nil {
			return rc, err
		}
		if attempt >= r.o.Attempts {
			return rc, fmt.Errorf("after %d retries: %w", attempt, err)
		}
		if !r.b.Withdraw() {
			return rc, fmt.Errorf("%w: %w", ErrRetryBudget, err)
		}
		select {
		case <-ctx.Done():
			return rc, fmt.Errorf("retrying: %w (after %w)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
		f := a.f
		if a, err = r.p.Publish(ctx, f.subject, f.header, f.data); err != nil {
			return Receipt{}, fmt.Errorf("retrying: %w", err)
		}
	}
}
