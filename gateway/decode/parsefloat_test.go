package decode

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
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

// TestParseInt checks the JSON integers, given as digits or as integral
// numbers with a fraction or exponent, and their saturation past int64.
func TestParseInt(t *testing.T) {
	f := func(in string, want int64, wantOK bool) {
		t.Helper()
		got, ok := parseInt([]byte(in))
		if got != want || ok != wantOK {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", in, got, ok, want, wantOK)
		}
	}
	f("0", 0, true)
	f("-0", 0, true)
	f("100", 100, true)
	f("-5", -5, true)
	f("1735830245121956789", 1735830245121956789, true)
	f("9223372036854775807", math.MaxInt64, true)
	f("9223372036854775808", math.MaxInt64, true) // 2^63: an integer, saturated
	f("-9223372036854775808", math.MinInt64, true)
	f("-9223372036854775809", math.MinInt64, true)
	f("9999999999999999999", math.MaxInt64, true)
	f("18446744073709551616", math.MaxInt64, true)
	f("123456789012345678901234567890", math.MaxInt64, true)
	f("1.0", 1, true)
	f("1.000000000000000000000000000000", 1, true)
	f("2.50e2", 250, true)
	f("1e3", 1000, true)
	f("1E+3", 1000, true)
	f("100e-2", 1, true)
	f("0.0", 0, true)
	f("0e999999999999", 0, true)
	f("0.000e-5", 0, true)
	f("1.7e18", 17e17, true)
	f("9.223372036854775807e18", math.MaxInt64, true)
	f("9.223372036854775808e18", math.MaxInt64, true)
	f("1e19", math.MaxInt64, true)
	f("1e30", math.MaxInt64, true)
	f("-1e30", math.MinInt64, true)
	f("1e999999999999999999999", math.MaxInt64, true)
	f("1.5", 0, false)
	f("0.1", 0, false)
	f("1e-1", 0, false)
	f("15e-1", 0, false)
	f("1.25e1", 0, false)
	f("1e-999999999999999999999", 0, false)
	f("0.00000000000000000000000000001", 0, false)
}

// FuzzParseInt checks parseInt against math/big's exact rationals.
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.0", "2.50e2", "9223372036854775808", "-9223372036854775809",
		"1.5", "1e-1", "100e-2", "1e19", "0e99", "123.456e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := scanner{b: []byte(in)}
		n := s.number()
		if s.err != nil || len(n) != len(in) || len(in) > 64 {
			return // not one JSON number, or an exponent too big for big.Rat to be quick
		}
		if i := strings.IndexAny(in, "eE"); i >= 0 && len(in)-i > 5 {
			return
		}
		got, ok := parseInt(n)
		r, good := new(big.Rat).SetString(in)
		if !good {
			t.Fatalf("big.Rat cannot read %q", in)
		}
		if !r.IsInt() {
			if ok {
				t.Fatalf("parseInt(%q) = %d, true; it is not an integer", in, got)
			}
			return
		}
		want := r.Num()
		switch {
		case want.Cmp(big.NewInt(math.MaxInt64)) > 0:
			want = big.NewInt(math.MaxInt64)
		case want.Cmp(big.NewInt(math.MinInt64)) < 0:
			want = big.NewInt(math.MinInt64)
		}
		if !ok || got != want.Int64() {
			t.Fatalf("parseInt(%q) = %d, %v; want %d", in, got, ok, want.Int64())
		}
	})
}

// TestParseIntDoesNotAllocate covers both paths.
func TestParseIntDoesNotAllocate(t *testing.T) {
	for _, in := range []string{"1735830245121956789", "2.50e2", "123456789012345678901234567890"} {
		b := []byte(in)
		if n := testing.AllocsPerRun(100, func() { parseInt(b) }); n != 0 {
			t.Errorf("parseInt(%q): %v allocations", in, n)
		}
	}
}

// BenchmarkParseTime reads the event time of a typical quote.
func BenchmarkParseTime(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseTime("2026-12-06T16:00:00.123456789Z"); !ok {
			b.Fatal("not parsed")
		}
	}
}

// BenchmarkParseTimeStd is BenchmarkParseTime through time.Parse, the
// fallback, for comparison in the same run.
func BenchmarkParseTimeStd(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseTimeStd("2026-12-06T16:00:00.123456789Z"); !ok {
			b.Fatal("not parsed")
		}
	}
}
