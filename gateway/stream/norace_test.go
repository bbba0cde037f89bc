//go:build !race

package stream_test

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/gateway/stream"
)

// TestMemoryPerIdleSubscriber opens n idle subscribers (each on 10
// symbols, snapshot read) and reports the heap and stacks they hold, per
// subscriber. Client and server share the process, so the figure is an
// upper bound of the gateway's share. Target: 64 KiB.
func TestMemoryPerIdleSubscriber(t *testing.T) {
	const n = 500
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t, stream.Options{MaxSubscribers: 2 * n})
			hc := client(p, 0)
			before := inUse()
			subs := make([]*sse, 0, n)
			for i := range n {
				s := openSSE(t, hc, fmt.Sprintf("%s/v1/streams/quote?symbols=S%d,A,B,C,D,E,F,G,H,I", e.base, i%50))
				s.mustNext(t)
				subs = append(subs, s)
			}
			after := inUse()
			per := (after - before) / n
			t.Logf("%s: %d idle subscribers hold %d KiB, %.1f KiB each (client and server)", p.name, n, (after-before)>>10, float64(per)/1024)
			if per > 64<<10 {
				t.Errorf("%.1f KiB per idle subscriber, target 64 KiB", float64(per)/1024)
			}
			for _, s := range subs {
				s.resp.Body.Close()
			}
			hc.CloseIdleConnections()
			_ = http.StatusOK
		})
	}
}

func inUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// TestSlowSubscriberDoesNotDelayAnother measures a fast subscriber's
// publish-to-receipt latency with and without a subscriber next to it that
// never reads (same symbols, same connection type). The figures are logged;
// the test fails only on a gross delay (the hub never waits on a subscriber).
func TestSlowSubscriberDoesNotDelayAnother(t *testing.T) {
	run := func(withSlow bool) (p50, p99 time.Duration) {
		e := newEnvBuf(t, stream.Options{WriteTimeout: time.Hour}, 4096)
		if withSlow {
			openSSE(t, client(protos[1], 4096), e.base+"/v1/streams/quote?symbols=*&snapshot=false")
		}
		fast := openSSE(t, client(protos[1], 0), e.base+"/v1/streams/quote?symbols=*&snapshot=false")
		e.settle()
		const n = 3000
		defer e.publishing(func(i int) bool {
			e.publishQuote(fmt.Sprintf("L%d", i%20), float64(i))
			if i%4 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
			return i < n
		})()
		var lat []time.Duration
		for len(lat) < n/2 {
			ev := fast.mustNext(t)
			if ev.bid() >= n-19 && len(lat) > 0 {
				break
			}
			ts, err := time.Parse(time.RFC3339Nano, ev.data["time"].(string))
			if err != nil {
				t.Fatal(err)
			}
			lat = append(lat, time.Since(ts))
		}
		slices.Sort(lat)
		return lat[len(lat)/2], lat[len(lat)*99/100]
	}
	b50, b99 := run(false)
	s50, s99 := run(true)
	t.Logf("fast subscriber publish-to-receipt: alone p50 %v p99 %v; next to one that never reads p50 %v p99 %v", b50, b99, s50, s99)
	if s99 > 5*b99+50*time.Millisecond {
		t.Errorf("a subscriber that never reads delayed another: p99 %v against %v", s99, b99)
	}
}
