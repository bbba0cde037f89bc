package workers

import (
	"context"
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
