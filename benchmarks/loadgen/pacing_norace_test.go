//go:build !race

package loadgen

import (
	"testing"
	"time"
)

// TestOpenLoopPacing offers 1,000 requests/s for 5 s to a fast local
// server: the requests that arrive must be within 2% of the 5,000
// scheduled. Timing sensitive, hence not run under the race detector (see
// TestOpenLoopPacingSmoke).
func TestOpenLoopPacing(t *testing.T) {
	checkPacing(t, 1000, 5*time.Second, 0.02, 50*time.Millisecond)
}
