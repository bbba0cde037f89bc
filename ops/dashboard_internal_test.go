package ops

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// TestQuantile checks quantile against what Prometheus' histogram_quantile
// gives for the same cumulative buckets.
func TestQuantile(t *testing.T) {
	bounds := []float64{0.1, 0.2, 0.4}
	f := func(q float64, cum []uint64, want float64) {
		t.Helper()
		got := quantile(q, bounds, cum)
		if math.IsNaN(want) {
			if got != nil {
				t.Errorf("quantile(%v, %v) = %v, want none", q, cum, *got)
			}
			return
		}
		if got == nil || math.Abs(*got-want) > 1e-12 {
			t.Errorf("quantile(%v, %v) = %v, want %v", q, cum, got, want)
		}
	}
	f(0.5, []uint64{0, 0, 0, 0}, math.NaN())    // empty
	f(0.5, []uint64{10, 10, 10, 10}, 0.05)      // first bucket starts at 0
	f(0.5, []uint64{0, 10, 10, 10}, 0.15)       // interpolated in (0.1, 0.2]
	f(0.99, []uint64{50, 100, 100, 100}, 0.198) // 99th of 100 in (0.1, 0.2]
	f(0.99, []uint64{0, 0, 0, 5}, 0.4)          // in +Inf: the highest bound
	f(0.5, []uint64{1, 2, 3, 4}, 0.2)           // rank 2 at the top of bucket 2
	f(1, []uint64{4, 4, 4, 4}, 0.1)             // the top of the last filled bucket
	f(0.5, []uint64{2, 2, 4, 4}, 0.1)           // rank 2 fills the first bucket
	f(0.75, []uint64{2, 2, 4, 4}, 0.3)          // (0.2, 0.4], half way
}

func TestParseLabels(t *testing.T) {
	m := parseLabels(`a="x",b="say \"hi\"\\",c="two\nlines"`)
	if m["a"] != "x" || m["b"] != `say "hi"\` || m["c"] != "two\nlines" || len(m) != 3 {
		t.Errorf("parseLabels: %q", m)
	}
	if parseLabels("") != nil {
		t.Error("no labels should give nil")
	}
}

// TestDashboardSampler checks that the one sampler starts with the first
// page and stops with the last: a process nobody watches does no work for
// the dashboard.
func TestDashboardSampler(t *testing.T) {
	d := newDashboard(4, slog.New(slog.DiscardHandler), nil, []*metrics.Set{metrics.NewSet()})
	d.every = 10 * time.Millisecond
	samples := make(chan struct{}, 1000)
	newSP := d.newSP
	d.newSP = func() *sampler {
		sp := newSP()
		sp.extra = func(io.Writer) { samples <- struct{}{} }
		return sp
	}
	running := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.stop != nil
	}
	if running() {
		t.Fatal("a sampler runs with no page open")
	}
	a, _, _ := d.subscribe()
	b, _, _ := d.subscribe()
	<-a
	<-b
	d.unsubscribe(a)
	<-b // still fed
	d.unsubscribe(b)
	if running() {
		t.Fatal("the sampler still runs after the last page went")
	}
	// Once stopped, no more samples are taken (at most the one under way).
	for len(samples) > 0 {
		<-samples
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(samples); n > 1 {
		t.Errorf("%d samples taken after the last page went", n)
	}
	c, _, ok := d.subscribe()
	if !ok {
		t.Fatal("subscribe after a restart refused")
	}
	<-c // a frame after the sampler restarted
	d.close()
	if _, _, ok := d.subscribe(); ok {
		t.Error("subscribe after close accepted")
	}
	if running() {
		t.Error("the sampler runs after close")
	}
}

// BenchmarkDashboardFrame measures one frame of the sampler: the cost, once
// a second, of keeping dashboards open, whatever their number. The set is
// about the size of a gateway's (some 80 series, 4 histograms).
func BenchmarkDashboardFrame(b *testing.B) {
	set := metrics.NewSet()
	for i := range 80 {
		set.NewCounter(fmt.Sprintf(`sluice_gateway_requests_total{status="%d"}`, 200+i)).Add(i)
	}
	for _, m := range []string{"async", "result", "a", "b"} {
		h := set.NewHistogram(`sluice_gateway_request_duration_seconds{mode="` + m + `"}`)
		for i := range 1000 {
			h.Update(float64(i) * 1e-5)
		}
	}
	sp := &sampler{sets: []*metrics.Set{set}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		if _, err := sp.next(now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDashboardStalledPage: a page that stops reading is cut at the write
// deadline instead of holding its handler and its place for ever.
func TestDashboardStalledPage(t *testing.T) {
	big := func(w io.Writer) { // frames of about 1.5 MB fill the socket buffers fast
		for i := range 30000 {
			fmt.Fprintf(w, "sluice_gateway_requests_total{status=\"%d\"} 1\n", i)
		}
	}
	d := newDashboard(1, slog.New(slog.DiscardHandler), big, nil)
	d.every, d.wait = 50*time.Millisecond, 300*time.Millisecond
	defer d.close()
	srv := httptest.NewServer(http.HandlerFunc(d.handleEvents))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: ops\r\n\r\n") // and never read
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 60s: %s", what)
			}
		}
	}
	waitFor("the page never subscribed", func() bool { return d.subscribers() == 1 })
	waitFor("a page that does not read is still fed", func() bool { return d.subscribers() == 0 })
}
