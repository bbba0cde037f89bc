package loadgen

import (
	"math/rand/v2"
	"time"
)

// Backoff is how a closed-loop stream waits after the server refused its
// request with 429 or 503, as a client that honours backpressure does: the
// first wait is Min, each further refusal in a row doubles it, up to Max and
// to the answer's Retry-After, whichever is shorter; each wait is jittered
// down by up to half, so that streams refused together do not come back
// together. A good answer ends the streak. The zero value sends at once, as
// before backoff existed. An open-loop run never backs off: it measures
// shedding at an offered rate.
//
// Max is far below the second the gateway's Retry-After says on purpose: a
// stream idle for the whole of it would leave the server idle too, and the
// run would measure the client's patience, not the server.
type Backoff struct {
	// Min is the first wait; zero turns backoff off.
	Min time.Duration
	// Max caps every wait; zero means Min.
	Max time.Duration
}

// DefaultBackoff starts at 1 ms and doubles up to 100 ms.
var DefaultBackoff = Backoff{Min: time.Millisecond, Max: 100 * time.Millisecond}

// On tells whether b makes refused streams wait.
func (b Backoff) On() bool { return b.Min > 0 }

// wait is the pause after the refusal that made streak refusals in a row (1
// for the first), whose answer said Retry-After retryAfter (negative when
// it had none); jitter in [0, 1) picks the point in the upper half of the
// doubled wait.
func (b Backoff) wait(streak int, retryAfter time.Duration, jitter float64) time.Duration {
	if !b.On() {
		return 0
	}
	capAt := max(b.Max, b.Min)
	if retryAfter >= 0 {
		capAt = min(capAt, retryAfter)
	}
	d := b.Min
	for i := 1; i < streak && d < capAt; i++ {
		d *= 2
	}
	d = min(d, capAt)
	return d - time.Duration(jitter*float64(d/2))
}

// pause is wait with a random jitter.
func (b Backoff) pause(streak int, retryAfter time.Duration) time.Duration {
	return b.wait(streak, retryAfter, rand.Float64())
}

// parseRetryAfter reads a Retry-After header in seconds; it returns -1 for
// anything else (an HTTP date included: the cap still holds).
func parseRetryAfter(v string) time.Duration {
	if v == "" || len(v) > 6 {
		return -1
	}
	n := 0
	for i := range len(v) {
		d := v[i] - '0'
		if d > 9 {
			return -1
		}
		n = n*10 + int(d)
	}
	return time.Duration(n) * time.Second
}
