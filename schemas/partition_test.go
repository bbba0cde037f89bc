package schemas

import (
	"hash/fnv"
	"testing"
)

// TestPartition: Partition is FNV-1a 32 modulo p (hash/fnv computes the
// same), stable, in [0, p), 0 for p <= 1, and spreads symbols over every
// partition.
func TestPartition(t *testing.T) {
	syms := []string{"", "AAPL", "MSFT", "BRK.B", "GOOG", "TSLA", "X", "ÄÖÜ"}
	for _, p := range []int{-1, 0, 1, 2, 8, 16, 1000} {
		for _, s := range syms {
			got := Partition(s, p)
			want := 0
			if p > 1 {
				h := fnv.New32a()
				h.Write([]byte(s))
				want = int(h.Sum32() % uint32(p))
			}
			if got != want {
				t.Errorf("Partition(%q, %d) = %d, want %d", s, p, got, want)
			}
		}
	}
	seen := make(map[int]bool)
	for i := 0; i < 200; i++ {
		seen[Partition("S"+string(rune('A'+i%26))+string(rune('A'+i/26)), 8)] = true
	}
	if len(seen) != 8 {
		t.Errorf("200 symbols fall in %d of 8 partitions", len(seen))
	}
	if n := testing.AllocsPerRun(100, func() { _ = Partition("AAPL", 8) }); n != 0 {
		t.Errorf("Partition allocates %v times", n)
	}
}
