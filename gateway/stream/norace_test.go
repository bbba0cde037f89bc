//go:build !race

package stream_test

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"

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
