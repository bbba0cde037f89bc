package workers

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/ops/tracing"
	"github.com/sluice-dev/sluice/schemas"
)

// headerTraceParent is the NATS header of a traced batch frame: the
// gateway's batch span, the parent of the worker's.
const headerTraceParent = "Traceparent"

// startSpan starts the worker's span of a batch whose frame names a
// sampled batch span (Options.Tracing; see package ops/tracing), or returns
// nil: with tracing off or an untraced batch, a batch costs one map lookup.
func (p *processor) startSpan(msg *nats.Msg, ks *kindState) trace.Span {
	tr := p.pl.tracer
	if tr == nil {
		return nil
	}
	v := msg.Header[headerTraceParent]
	if len(v) == 0 {
		return nil
	}
	sc := tracing.ParseTraceParent(v[0], "")
	if !sc.IsSampled() {
		return nil
	}
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	_, span := tr.Start(ctx, ks.spanName, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", msg.Subject),
			attribute.String("messaging.consumer.group.name", p.pl.group),
			attribute.Int("messaging.batch.message_count", int(frameCount(msg.Data)))))
	return span
}

// linkEvents links span to the request spans that the batch's events name
// (their traceparent, when sampled), each once.
func (p *processor) linkEvents(span trace.Span) {
	b := &p.batch
	var last string
	for i := 0; i < b.n; i++ {
		ev := &b.events[i]
		if ev.TraceParent == "" || ev.TraceParent == last || !schemas.TraceSampled(ev.TraceParent) {
			continue
		}
		last = ev.TraceParent
		if sc := tracing.ParseTraceParent(ev.TraceParent, ev.TraceState); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
}

// endSpan ends a batch's span with its outcome.
func (p *processor) endSpan(span trace.Span) {
	b := &p.batch
	rejected := 0
	for i := 0; i < b.n; i++ {
		if len(b.errs[i]) > 0 {
			rejected++
		}
	}
	span.SetAttributes(attribute.Int("sluice.enriched", b.n-rejected), attribute.Int("sluice.rejected", rejected))
	span.End()
}
