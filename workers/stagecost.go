package workers

import (
	"context"
	"sync"
	"time"
)

// stageCost is the test knob behind --stage-cost: it burns cost of CPU per
// event in the batch, spinning rather than sleeping so that a worker is as
// busy as a real slow stage would make it.
func stageCost(cost time.Duration) Stage {
	return StageFunc(func(_ context.Context, b *Batch) error {
		spin(time.Duration(b.Len()) * cost)
		return nil
	})
}

func spin(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
	}
}

// stageDelay is the test knob behind --stage-delay: a downstream that
// takes delay per event, one event at a time, without using CPU. Batches
// wait on one shared clock, so a busy worker does at most 1/delay events
// per second whatever its concurrency, and what falls between two batches
// (the timer waking late, the worker's own processing) is paid back on the
// next one, up to delayDebt, rather than lowering the rate; a longer gap
// means the worker was idle. The stage's context ends only when a
// shutdown gives up waiting (abort), which cuts the wait short; a graceful
// drain waits every delay out.
func stageDelay(delay time.Duration) Stage {
	var mu sync.Mutex
	var next time.Time
	return StageFunc(func(ctx context.Context, b *Batch) error {
		mu.Lock()
		now := time.Now()
		if now.Sub(next) > delayDebt {
			next = now
		}
		next = next.Add(time.Duration(b.Len()) * delay)
		wait := next.Sub(now)
		mu.Unlock()
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	})
}

// delayDebt is how far behind its clock stageDelay may fall and still
// catch up; longer and the worker was idle, not late.
const delayDebt = 5 * time.Millisecond
