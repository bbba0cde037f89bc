package tracing

import (
	"go.opentelemetry.io/otel/trace"
)

// ParseTraceParent returns the span context of a W3C traceparent, marked
// remote; an invalid one gives an invalid span context. It does not
// allocate.
func ParseTraceParent(tp, state string) trace.SpanContext {
	if len(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return trace.SpanContext{}
	}
	tid, err := trace.TraceIDFromHex(tp[3:35])
	if err != nil {
		return trace.SpanContext{}
	}
	sid, err := trace.SpanIDFromHex(tp[36:52])
	if err != nil {
		return trace.SpanContext{}
	}
	hi, ok1 := unhex(tp[53])
	lo, ok2 := unhex(tp[54])
	if !ok1 || !ok2 {
		return trace.SpanContext{}
	}
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(hi<<4 | lo), Remote: true}
	if state != "" {
		if ts, err := trace.ParseTraceState(state); err == nil {
			cfg.TraceState = ts
		}
	}
	return trace.NewSpanContext(cfg)
}

// AppendTraceParent appends sc as a version-00 W3C traceparent.
func AppendTraceParent(b []byte, sc trace.SpanContext) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, "00-"...)
	tid, sid := sc.TraceID(), sc.SpanID()
	for _, c := range tid {
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	b = append(b, '-')
	for _, c := range sid {
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	f := byte(sc.TraceFlags())
	return append(b, '-', hexDigits[f>>4], hexDigits[f&15])
}

// TraceParent returns sc as a version-00 W3C traceparent.
func TraceParent(sc trace.SpanContext) string {
	var buf [55]byte
	return string(AppendTraceParent(buf[:0], sc))
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
