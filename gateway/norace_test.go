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
	for _, h := range []http.Header{
		{"Prefer": {"respond-async, wait=5, return=representation"}},
		{"Prefer": {`return="minimal"; x`}},
		{},
	} {
		if n := testing.AllocsPerRun(1000, func() { preferredReturn(h) }); n != 0 {
			t.Fatalf("Prefer %q: %v allocations per call, want 0", h.Values("Prefer"), n)
		}
	}
}
