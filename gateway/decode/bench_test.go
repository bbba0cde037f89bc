package decode_test

import (
	"net/http"
	"testing"

	"github.com/sluice-dev/sluice/gateway/decode"
	"github.com/sluice-dev/sluice/schemas"
)

// BenchmarkBodyFreshGoroutine decodes a one-quote JSON body (with its
// event time) on a new goroutine each time, as net/http's HTTP/2 server
// runs each request: a deep decode grows the goroutine's stack, a cost the
// in-place benchmarks do not see.
func BenchmarkBodyFreshGoroutine(b *testing.B) {
	h := http.Header{"Content-Type": {"application/json"}}
	body := []byte(`{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200,"ts":"2026-12-06T16:00:00.123456789Z"}`)
	done := make(chan struct{})
	b.ReportAllocs()
	for b.Loop() {
		go func() {
			var dst [1]schemas.Event
			if _, _, err := decode.Body(schemas.KindQuote, h, body, 100, dst[:0]); err != nil {
				b.Error(err)
			}
			done <- struct{}{}
		}()
		<-done
	}
}
