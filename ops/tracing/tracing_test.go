package tracing

import (
	"context"
	"testing"
)

func TestTraceParentRoundTrip(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sc := ParseTraceParent(tp, "rojo=00f067aa0ba902b7")
	if !sc.IsValid() || !sc.IsSampled() || !sc.IsRemote() || sc.TraceState().Get("rojo") != "00f067aa0ba902b7" {
		t.Fatalf("parsed %+v", sc)
	}
	if got := TraceParent(sc); got != tp {
		t.Errorf("TraceParent = %q, want %q", got, tp)
	}
	for _, bad := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"} {
		if sc := ParseTraceParent(bad, ""); sc.IsValid() {
			t.Errorf("ParseTraceParent(%q) valid", bad)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = ParseTraceParent(tp, "") }); n != 0 {
		t.Errorf("ParseTraceParent allocates %v times", n)
	}
}

func TestOffWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	p, err := New(context.Background(), Options{SampleRatio: 1})
	if p != nil || err != nil {
		t.Fatalf("New without endpoint = %v, %v; want nil, nil", p, err)
	}
	if p.Tracer() != nil || p.Sample() || p.Shutdown(context.Background()) != nil {
		t.Error("a nil Provider is not off")
	}
}

func TestOptionsValidate(t *testing.T) {
	f := func(o Options, ok bool) {
		t.Helper()
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", o, err, ok)
		}
	}
	f(Options{Endpoint: "http://127.0.0.1:4318", SampleRatio: 0.01}, true)
	f(Options{Endpoint: "127.0.0.1:4318"}, false)
	f(Options{SampleRatio: 1.5}, false)
	f(Options{SampleRatio: -0.1}, false)
	if u, _ := endpointURL("http://c:4318"); u != "http://c:4318/v1/traces" {
		t.Errorf("endpoint URL %q", u)
	}
	if u, _ := endpointURL("http://c:4318/custom"); u != "http://c:4318/custom" {
		t.Errorf("endpoint URL with a path %q", u)
	}
}

func TestSampleRatio(t *testing.T) {
	p := &Provider{threshold: uint64(0.25 * (1 << 63) * 2)}
	n := 0
	for range 100000 {
		if p.Sample() {
			n++
		}
	}
	if n < 23000 || n > 27000 {
		t.Errorf("ratio 0.25 sampled %d of 100000", n)
	}
	if (&Provider{}).Sample() {
		t.Error("ratio 0 sampled")
	}
	if !(&Provider{all: true}).Sample() {
		t.Error("ratio 1 did not sample")
	}
}
