// Package tracing sets up OpenTelemetry tracing for sluice's processes: a
// tracer provider exporting spans over OTLP/HTTP, with head sampling by
// ratio, and the W3C traceparent helpers the gateway and workers use to
// join their spans to the trace context that events carry (see the main
// README, "Trace context").
//
// Tracing is off unless an endpoint is configured (the --otlp-endpoint flag,
// or OpenTelemetry's own OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables): [New] then returns a nil
// *Provider, whose Tracer is nil, and the gateway and workers test for a nil
// tracer once per request or batch and do nothing else.
//
// The spans of one request: the gateway's request span (kind server, a
// child of the request's traceparent when it has one); a batch span per
// published batch (kind producer), a child of the first traced request in
// it and linked to every traced request's span; a worker span per batch
// (kind consumer), a child of the batch span (whose context rides the
// batch's NATS header traceparent) and linked to the request spans that the
// batch's events name, with the worker's stages as span events. Sampling is
// decided once, at the head: a request with a sampled traceparent is
// traced, one without is traced at the sampling ratio, and everything
// downstream follows the request's decision.
package tracing
