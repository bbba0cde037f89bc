//go:build !race

package gateway

import (
	"net/http"
	"testing"
)

// TestPreferredReturnAllocs: reading the Prefer header costs no
// allocation per request (strings.Split cost one). Allocation counts differ
// under the race detector, hence the build tag.
func TestPreferredReturnAllocs(t *testing.T) {
	h := http.Header{"Prefer": {"respond-async, wait=5, return=representation"}}
	if n := testing.AllocsPerRun(1000, func() { preferredReturn(h) }); n != 0 {
		t.Fatalf("%v allocations per call, want 0", n)
	}
}
