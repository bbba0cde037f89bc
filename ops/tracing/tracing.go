package tracing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultBatchTimeout is how long spans wait, at most, before they are
// exported.
const DefaultBatchTimeout = 5 * time.Second

// ScopeName is the instrumentation scope of sluice's spans.
const ScopeName = "github.com/sluice-dev/sluice"

// Options configure tracing. The zero value is off.
type Options struct {
	// Endpoint is the OTLP/HTTP collector's base URL
	// (http://collector:4318); spans go to its /v1/traces unless the URL
	// has a path of its own. Empty: OpenTelemetry's environment variables
	// decide (OTEL_EXPORTER_OTLP_ENDPOINT, ..._TRACES_ENDPOINT, their
	// headers and timeouts), and without them tracing is off.
	Endpoint string
	// SampleRatio is the fraction of requests without a sampled
	// traceparent that are traced, from 0 to 1 (a request whose
	// traceparent is sampled is always traced, one whose traceparent is
	// not sampled never is).
	SampleRatio float64
	// ServiceName names the process in its spans (service.name).
	ServiceName string
	// BatchTimeout bounds how long a span waits to be exported (default
	// [DefaultBatchTimeout]).
	BatchTimeout time.Duration
}

// Enabled reports whether o turns tracing on: an endpoint, given or in
// the environment.
func (o *Options) Enabled() bool {
	return o.Endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Validate checks the options.
func (o *Options) Validate() error {
	if !(o.SampleRatio >= 0 && o.SampleRatio <= 1) {
		return fmt.Errorf("tracing: sample ratio %v must be in [0, 1]", o.SampleRatio)
	}
	if o.Endpoint != "" {
		if _, err := endpointURL(o.Endpoint); err != nil {
			return err
		}
	}
	if o.BatchTimeout < 0 {
		return errors.New("tracing: batch timeout must not be negative")
	}
	return nil
}

// endpointURL returns the traces URL of a collector's base URL.
func endpointURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing: OTLP endpoint %q: want http(s)://host:port", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Provider is a running tracer provider. A nil *Provider is tracing off:
// its methods do nothing.
type Provider struct {
	tp        *sdktrace.TracerProvider
	tracer    trace.Tracer
	threshold uint64 // Sample is true below it
	all       bool   // ratio 1
}

// New starts a tracer provider for o, or returns nil (and no error) when o
// does not turn tracing on. Spans are exported in batches in the
// background; a collector that is down costs dropped spans, never a
// blocked request.
func New(ctx context.Context, o Options) (*Provider, error) {
	if !o.Enabled() {
		return nil, nil
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var opts []otlptracehttp.Option
	if o.Endpoint != "" {
		u, _ := endpointURL(o.Endpoint)
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	bt := o.BatchTimeout
	if bt == 0 {
		bt = DefaultBatchTimeout
	}
	res := resource.NewSchemaless(attribute.String("service.name", o.ServiceName))
	// The head decision is the gateway's ([Provider.Sample]), made before
	// any span exists, so that an untraced request costs one random
	// number; the SDK follows it, and the parent's flag downstream.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(bt)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithResource(res),
	)
	return &Provider{tp: tp, tracer: tp.Tracer(ScopeName),
		threshold: uint64(o.SampleRatio * math.MaxUint64), all: o.SampleRatio >= 1}, nil
}

// Tracer returns sluice's tracer, or nil when p is nil (tracing off). Its
// sampler follows the parent span's flag and samples a root span: call
// [Provider.Sample] before starting a root.
func (p *Provider) Tracer() trace.Tracer {
	if p == nil {
		return nil
	}
	return p.tracer
}

// Sample makes the head sampling decision for a request without a trace
// context of its own: true for the configured ratio of calls. It does not
// lock or allocate.
func (p *Provider) Sample() bool {
	return p != nil && (p.all || rand.Uint64() < p.threshold)
}

// Shutdown exports the spans still held, then stops the provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
