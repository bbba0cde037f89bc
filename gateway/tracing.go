package gateway

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/ops/tracing"
	"github.com/sluice-dev/sluice/schemas"
)

// Spans (Options.Tracing; see package ops/tracing for the whole trace).
// With tracing off, or for a request not sampled, none of this runs past
// one nil check or one random number: no span is started, nothing
// allocates.

// headerTraceParent is the NATS header of a traced batch frame: the batch
// span's context, the parent of the worker's span.
const headerTraceParent = "Traceparent"

// batchTrace is the tracing state of a batch holding a traced request's
// events: the request spans it links, then its own span.
type batchTrace struct {
	links []trace.Link
	span  trace.Span
}

// startRequestSpan starts the request's span when it is sampled: the
// request's traceparent decides when it has one, the sampling ratio when it
// has none. It returns nil otherwise.
func (s *Server) startRequestSpan(r *http.Request, kind schemas.Kind) trace.Span {
	p := s.opts.Tracing
	ctx := context.Background()
	if v := r.Header["Traceparent"]; len(v) > 0 && schemas.ValidTraceParent(v[0]) {
		var state string
		if vs := r.Header["Tracestate"]; len(vs) > 0 && len(vs[0]) <= schemas.MaxTraceStateLen {
			state = vs[0]
		}
		sc := tracing.ParseTraceParent(v[0], state)
		if !sc.IsSampled() {
			return nil
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	} else if !p.Sample() {
		return nil
	}
	_, span := p.Tracer().Start(ctx, s.spanNames[kind], trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method),
			attribute.String("http.route", "/v1/events/{type}"), attribute.String("sluice.type", kind.String())))
	return span
}

// traceEvents makes the request's span the trace context of its events
// (those without their own) and of the traceresponse header.
func traceEvents(st *reqState) {
	sc := st.span.SpanContext()
	st.sc = sc
	st.trace = tracing.TraceParent(sc)
	st.traceState = sc.TraceState().String()
}

// endRequestSpan ends the request's span with the answer's status.
func endRequestSpan(st *reqState, status int) {
	st.span.SetAttributes(attribute.Int("sluice.events", len(st.events)))
	if status != 0 {
		st.span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			st.span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	st.span.End()
}

// linkLocked records in cur that a traced request (its span context sc)
// has events in it.
func linkLocked(cur *batch, sc *trace.SpanContext) {
	if cur.tr == nil {
		cur.tr = &batchTrace{}
	}
	cur.tr.links = append(cur.tr.links, trace.Link{SpanContext: *sc})
}

// startBatchSpan starts the span of a traced batch being published: a child
// of the first traced request in it, linked to every one. It returns the
// traceparent for the frame's header.
func (b *batcher) startBatchSpan(f *batch) string {
	ctx := trace.ContextWithSpanContext(context.Background(), f.tr.links[0].SpanContext)
	_, span := b.tracer.Start(ctx, b.spanName, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(f.tr.links...),
		trace.WithAttributes(attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", b.subject),
			attribute.Int("messaging.batch.message_count", f.n),
			attribute.String("sluice.flush_reason", flushReasonNames[f.reason])))
	f.tr.span = span
	return tracing.TraceParent(span.SpanContext())
}

// endBatchSpan ends a traced batch's span once it is published (durable:
// stored) or refused.
func endBatchSpan(f *batch) {
	if f.tr == nil || f.tr.span == nil {
		return
	}
	if f.err != nil {
		f.tr.span.SetStatus(codes.Error, f.err.Error())
	}
	f.tr.span.End()
}
