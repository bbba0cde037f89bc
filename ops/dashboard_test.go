package ops_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// streamClient is [client] without a whole-request timeout, for feeds.
func streamClient(t *testing.T, proto int) *http.Client {
	t.Helper()
	c := client(t, proto)
	c.Timeout = 0
	return c
}

// feed opens the dashboard's event stream and returns its frames as they
// come (decoded), closed when the stream ends.
func feed(t *testing.T, c *http.Client, base string) (*http.Response, <-chan map[string]any) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/dashboard/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /dashboard/events: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	frames := make(chan map[string]any, 100)
	if resp.StatusCode != http.StatusOK {
		close(frames)
		return resp, frames
	}
	go func() {
		defer close(frames)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				event = e
			} else if d, ok := strings.CutPrefix(line, "data: "); ok && event == "frame" {
				var f map[string]any
				if err := json.Unmarshal([]byte(d), &f); err != nil {
					t.Errorf("frame is not JSON: %v: %.200s", err, d)
					return
				}
				frames <- f
			}
		}
	}()
	return resp, frames
}

// nextFrame waits for a frame, failing the test when the feed ends.
func nextFrame(t *testing.T, frames <-chan map[string]any) map[string]any {
	t.Helper()
	f, ok := <-frames
	if !ok {
		t.Fatal("the feed ended")
	}
	return f
}

// findSeries returns the frame's series called name (counters and gauges)
// or, with hist, its histograms.
func findSeries(f map[string]any, key, name string) []map[string]any {
	var out []map[string]any
	list, _ := f[key].([]any)
	for _, s := range list {
		m := s.(map[string]any)
		if m["n"] == name {
			out = append(out, m)
		}
	}
	return out
}

// TestDashboardPage serves the page over h1 and h2: HTML, self-contained (no
// URL outside the page but its own feed), not cached.
func TestDashboardPage(t *testing.T) {
	_, base := startServer(t, ops.ServerOptions{})
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//|https?://`)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			resp, err := client(t, m.proto).Get(base + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
				t.Fatal(err)
			}
			body := b.String()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
			}
			if !strings.Contains(body, `new EventSource("dashboard/events")`) || !strings.Contains(body, "<svg") {
				t.Errorf("the page does not read its feed or draw SVG")
			}
			if loc := external.FindString(body); loc != "" {
				t.Errorf("the page refers to something outside itself: %q", loc)
			}
		})
	}
	// Only / itself: other paths stay 404.
	if code, _ := get(t, client(t, 1), 1, base+"/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /nothing: %d, want 404", code)
	}
}

// TestDashboardFeed reads frames over h1 and h2: counters with their rate,
// readiness as sluice_ready, histograms with quantiles from the le buckets.
func TestDashboardFeed(t *testing.T) {
	set := metrics.NewSet()
	reqs := set.NewCounter(`sluice_gateway_requests_total{status="202"}`)
	lat := set.NewHistogram(`sluice_gateway_request_duration_seconds{mode="async"}`)
	for range 100 {
		lat.Update(0.002) // in the le bucket (0.001468, 0.002154]
	}
	srv, base := startServer(t, ops.ServerOptions{Metrics: []*metrics.Set{set}})
	srv.AddReady("nats", func() error { return fmt.Errorf("not connected") })
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			resp, frames := feed(t, streamClient(t, m.proto), base)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.ProtoMajor != m.proto {
				t.Fatalf("feed: %d %q over %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Proto)
			}
			f := nextFrame(t, frames)
			before := findSeries(f, "series", "sluice_gateway_requests_total")
			if len(before) != 1 {
				t.Fatalf("requests series: %v", before)
			}
			reqs.Add(7)
			// The next frame after the add carries the new value and a
			// positive rate.
			opstest.CheckFor(t, 10*time.Second, 0, func() error {
				f = nextFrame(t, frames)
				s := findSeries(f, "series", "sluice_gateway_requests_total")[0]
				if s["v"].(float64) != before[0]["v"].(float64)+7 {
					return fmt.Errorf("requests %v, want %v", s["v"], before[0]["v"].(float64)+7)
				}
				if r, _ := s["r"].(float64); r <= 0 {
					return fmt.Errorf("rate %v after 7 requests", s["r"])
				}
				return nil
			})
			ready := findSeries(f, "series", "sluice_ready")
			if len(ready) != 1 || ready[0]["v"].(float64) != 0 || ready[0]["l"].(map[string]any)["check"] != "nats" {
				t.Errorf("sluice_ready: %v", ready)
			}
			h := findSeries(f, "hists", "sluice_gateway_request_duration_seconds")
			if len(h) != 1 {
				t.Fatalf("histograms: %v", f["hists"])
			}
			// histogram_quantile: 0.001468 + (0.002154-0.001468) * 0.5.
			if p50 := h[0]["p50"].(float64); p50 < 0.00181 || p50 > 0.00182 {
				t.Errorf("p50 %v, want 0.001811", p50)
			}
			if h[0]["c"].(float64) < 100 || h[0]["l"].(map[string]any)["mode"] != "async" {
				t.Errorf("histogram %v", h[0])
			}
		})
	}
}

// TestDashboardBound: past DashboardClients the feed answers 503 with
// Retry-After; a page that goes frees its place.
func TestDashboardBound(t *testing.T) {
	_, base := startServer(t, ops.ServerOptions{DashboardClients: 1})
	c := streamClient(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/dashboard/events", nil)
	first, err := c.Do(req)
	if err != nil || first.StatusCode != http.StatusOK {
		t.Fatalf("first feed: %v %v", err, first)
	}
	resp, _ := feed(t, c, base)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second feed: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	cancel()
	first.Body.Close()
	opstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		r, err := c.Get(base + "/dashboard/events")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("after the first page went: %d", r.StatusCode)
		}
		return nil
	})
}

// TestDashboardOff: a negative DashboardClients serves neither the page nor
// its feed.
func TestDashboardOff(t *testing.T) {
	_, base := startServer(t, ops.ServerOptions{DashboardClients: -1})
	for _, p := range []string{"/", "/dashboard/events"} {
		if code, _ := get(t, client(t, 1), 1, base+p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
}

// TestDashboardShutdown: Shutdown ends open feeds at once instead of
// waiting for its context, over h1 and h2.
func TestDashboardShutdown(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s, err := ops.NewServer(ops.ServerOptions{Addr: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			_, frames := feed(t, streamClient(t, m.proto), "http://"+s.Addr())
			nextFrame(t, frames)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown with a page open: %v", err)
			}
			for range frames { // the stream ends
			}
		})
	}
}
