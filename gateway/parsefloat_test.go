package gateway

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestParseFloatMatchesStrconv checks the fast path against strconv on
// prices, sizes and edge cases, bit for bit.
func TestParseFloatMatchesStrconv(t *testing.T) {
	cases := []string{"0", "-0", "1", "189.52", "0.0001", "-3.25", "123456789012345", "1234567890123456",
		"9007199254740993", "0.1", "0.3", "1e5", "1.5E-3", "12345.678901234567", "0.000000000000000000001",
		"100.010", "1.7976931348623157e308"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		cases = append(cases, strconv.FormatFloat(float64(r.IntN(10_000_000))/[]float64{1, 10, 100, 1e4, 1e6}[r.IntN(5)], 'f', -1, 64))
		cases = append(cases, strconv.FormatFloat(r.Float64()*1000, 'f', r.IntN(12), 64))
	}
	for _, c := range cases {
		want, werr := strconv.ParseFloat(c, 64)
		got, err := parseFloat([]byte(c))
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("parseFloat(%q) = %v, %v; strconv %v, %v", c, got, err, want, werr)
		}
	}
}

func BenchmarkParseFloat(b *testing.B) {
	for _, in := range []string{"189.52", "131.0425"} {
		b.Run("fast/"+in, func(b *testing.B) {
			for range b.N {
				_, _ = parseFloat([]byte(in))
			}
		})
		b.Run("strconv/"+in, func(b *testing.B) {
			for range b.N {
				_, _ = strconv.ParseFloat(in, 64)
			}
		})
	}
}
