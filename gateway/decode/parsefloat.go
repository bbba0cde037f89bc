package decode

import (
	"math"
	"strconv"
)

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat parses a JSON number already validated by the scanner. Prices
// and sizes (at most 15 significant digits, a decimal point, no exponent)
// take the exact fast path: an integer mantissa below 2^53 divided by an
// exact power of ten is correctly rounded (Clinger). Everything else goes to
// strconv.ParseFloat, whose slow path needs a large stack frame: on the hot
// path that frame made every handler goroutine grow its stack.
func parseFloat(b []byte) (float64, error) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	digits, frac := 0, -1
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			if mant != 0 || frac >= 0 {
				digits++
			}
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return strconv.ParseFloat(bytesString(b), 64)
		}
	}
	if digits > 15 || mant >= 1<<53 || frac > 22 {
		return strconv.ParseFloat(bytesString(b), 64)
	}
	f := float64(mant)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, nil
}

// isZero reports whether a validated JSON number has no nonzero digit in
// its mantissa (0, -0.0, 0e999): a number whose float64 may be zero.
func isZero(b []byte) bool {
	for _, c := range b {
		switch {
		case c == 'e' || c == 'E':
			return true
		case c >= '1' && c <= '9':
			return false
		}
	}
	return true
}

// clip returns a number for an error message, cut to a readable length.
func clip(b []byte) string {
	const max = 40
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// parseInt parses a JSON number already validated by the scanner as an
// integer: ok is false when its value has a fractional part. Its value may
// be written with a fraction or an exponent (1.0, 2.5e3, 1e2): JSON Schema
// calls any number with a zero fractional part an integer. A value past
// int64 saturates to math.MinInt64 or math.MaxInt64. Plain digits (all
// sizes and Unix nanoseconds in practice) take a fast path; the exact
// decimal path does not allocate either.
func parseInt(b []byte) (int64, bool) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	var u uint64
	j := i
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		u = u*10 + uint64(b[j]-'0')
	}
	if j == len(b) && j-i <= 19 { // 19 digits fit a uint64
		return saturate(u, neg), true
	}
	return parseIntExact(b, i, j, neg)
}

// saturate returns u, negated when neg, clamped to int64.
func saturate(u uint64, neg bool) int64 {
	switch {
	case neg && u >= 1<<63:
		return math.MinInt64
	case neg:
		return -int64(u)
	case u > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(u)
}

// parseIntExact is parseInt's general path: b[i:j] are the integer digits,
// what follows them an optional fraction and exponent. It reads the
// significant digits d1…dn (without leading and trailing zeros) and the
// power of ten e of the value d1…dn × 10^e: the value is an integer when e
// >= 0, and past int64 when it has more than 19 digits.
func parseIntExact(b []byte, i, j int, neg bool) (int64, bool) {
	intEnd, fracStart, fracEnd := j, j, j
	if j < len(b) && b[j] == '.' {
		fracStart = j + 1
		for fracEnd = fracStart; fracEnd < len(b) && b[fracEnd] >= '0' && b[fracEnd] <= '9'; fracEnd++ {
		}
	}
	exp := 0
	if k := fracEnd; k < len(b) { // 'e' or 'E'
		k++
		expNeg := b[k] == '-'
		if b[k] == '+' || b[k] == '-' {
			k++
		}
		for ; k < len(b); k++ {
			if exp < 1_000_000 { // past that, only the sign matters
				exp = exp*10 + int(b[k]-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	// The digits, integer part then fraction, as one sequence.
	nInt, n := intEnd-i, intEnd-i+fracEnd-fracStart
	digit := func(k int) byte {
		if k < nInt {
			return b[i+k] - '0'
		}
		return b[fracStart+k-nInt] - '0'
	}
	first, last := 0, n-1
	for first < n && digit(first) == 0 {
		first++
	}
	if first == n {
		return 0, true // every digit zero
	}
	for digit(last) == 0 {
		last--
	}
	e := exp - (fracEnd - fracStart) + (n - 1 - last)
	switch {
	case e < 0:
		return 0, false // the last significant digit is a fraction's
	case last-first+1+e > 19:
		return saturate(math.MaxUint64, neg), true
	}
	var u uint64
	for k := first; k <= last; k++ {
		u = u*10 + uint64(digit(k))
	}
	for ; e > 0; e-- {
		if u > math.MaxUint64/10 {
			return saturate(math.MaxUint64, neg), true
		}
		u *= 10
	}
	return saturate(u, neg), true
}
