package gateway

import "strconv"

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
