package ops_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/ops"
)

func TestWriteSets(t *testing.T) {
	a, b := metrics.NewSet(), metrics.NewSet()
	a.NewCounter("sluice_test_a_total").Add(2)
	b.NewCounter("sluice_test_b_total").Inc()
	var buf bytes.Buffer
	ops.WriteSets(&buf, a, nil, b)
	out := buf.String()
	for _, want := range []string{"sluice_test_a_total 2\n", "sluice_test_b_total 1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestWriteSetsMetadata: a family known to the catalogue gets its help and
// type once, even when its series come from two sets.
func TestWriteSetsMetadata(t *testing.T) {
	a, b := metrics.NewSet(), metrics.NewSet()
	a.NewCounter(`sluice_worker_batches_total{group="quotes"}`).Add(3)
	b.NewCounter(`sluice_worker_batches_total{group="trades"}`).Inc()
	b.NewCounter(`sluice_test_unknown_total`).Inc()
	var buf bytes.Buffer
	ops.WriteSets(&buf, a, b)
	f, _ := ops.LookupFamily("sluice_worker_batches_total")
	want := "# HELP sluice_worker_batches_total " + f.Help + "\n# TYPE sluice_worker_batches_total counter\n" +
		"sluice_worker_batches_total{group=\"quotes\"} 3\nsluice_worker_batches_total{group=\"trades\"} 1\n"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("want\n%s\nin\n%s", want, buf.String())
	}
	if !strings.Contains(buf.String(), "# HELP sluice_test_unknown_total sluice_test_unknown_total (not described in sluice's ops/catalog.go).\n# TYPE sluice_test_unknown_total untyped\n") {
		t.Errorf("an undescribed family has no placeholder help and type:\n%s", buf.String())
	}
}

// TestWriteSetsHistogram: vmrange buckets become cumulative le buckets,
// exactly (an observation on a bound counts in that bound's bucket), and a
// histogram never observed is written with zero buckets.
func TestWriteSetsHistogram(t *testing.T) {
	s := metrics.NewSet()
	h := s.NewHistogram(`sluice_gateway_request_duration_seconds{mode="async"}`)
	s.NewHistogram(`sluice_gateway_request_duration_seconds{mode="result"}`)
	for _, v := range []float64{0.00005, 0.0001, 0.00012, 0.001, 0.0015, 20} {
		h.Update(v)
	}
	var buf bytes.Buffer
	ops.WriteSets(&buf, s)
	out := buf.String()
	for _, want := range []string{
		"# TYPE sluice_gateway_request_duration_seconds histogram\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="4.642e-05"} 0` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="6.813e-05"} 1` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="0.0001"} 2` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="0.0001468"} 3` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="0.001"} 4` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="0.001468"} 4` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="0.002154"} 5` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="10"} 5` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="async",le="+Inf"} 6` + "\n",
		`sluice_gateway_request_duration_seconds_sum{mode="async"} 20.00277` + "\n",
		`sluice_gateway_request_duration_seconds_count{mode="async"} 6` + "\n",
		`sluice_gateway_request_duration_seconds_bucket{mode="result",le="+Inf"} 0` + "\n",
		`sluice_gateway_request_duration_seconds_count{mode="result"} 0` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "vmrange") {
		t.Errorf("vmrange buckets left in the output:\n%s", out)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// BenchmarkHistogramObservation is the cost of one observation of a
// sluice histogram: VictoriaMetrics' own Update, which the le exposition
// leaves unchanged (it runs at scrape time only).
func BenchmarkHistogramObservation(b *testing.B) {
	s := metrics.NewSet()
	h := s.NewHistogram(`sluice_gateway_request_duration_seconds{mode="async"}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Update(float64(i%1000) * 1e-5)
	}
}

// BenchmarkWriteSets is the cost of one scrape of a gateway-sized set.
func BenchmarkWriteSets(b *testing.B) {
	s := metrics.NewSet()
	for _, m := range []string{"async", "result"} {
		h := s.NewHistogram(`sluice_gateway_request_duration_seconds{mode="` + m + `"}`)
		for i := range 1000 {
			h.Update(float64(i) * 1e-5)
		}
	}
	for i := range 200 {
		s.NewCounter(`sluice_gateway_http2_errors_total{reason="r` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `"}`)
	}
	b.ReportAllocs()
	for b.Loop() {
		ops.WriteSets(io.Discard, s)
	}
}
