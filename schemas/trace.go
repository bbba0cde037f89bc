package schemas

// MaxTraceStateLen bounds the tracestate an event carries: the W3C Trace
// Context recommends propagating at least 512 characters; a longer one is
// dropped at the gateway rather than truncated (truncating a list member
// would corrupt it).
const MaxTraceStateLen = 512

// TraceParentLen is the length of a version-00 W3C traceparent:
// 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>.
const TraceParentLen = 55

// ValidTraceParent reports whether s is a W3C traceparent that the pipeline
// carries: 55 characters, lower-case hex fields, a version other than ff,
// trace id and parent id not all zeros. A later version's extra fields are
// not carried: such a header is not valid here (the W3C rule for a parser of
// version 00 is to ignore what it cannot read).
func ValidTraceParent(s string) bool {
	if len(s) != TraceParentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	if s[0] == 'f' && s[1] == 'f' {
		return false
	}
	return isLowerHex(s[0:2]) && isLowerHex(s[53:55]) &&
		isLowerHex(s[3:35]) && !allZero(s[3:35]) &&
		isLowerHex(s[36:52]) && !allZero(s[36:52])
}

// TraceSampled reports whether a valid traceparent has its sampled flag set.
func TraceSampled(traceparent string) bool {
	return len(traceparent) == TraceParentLen && hexLow(traceparent[54])&1 == 1
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

func hexLow(c byte) byte {
	v, _ := hexVal(c)
	return v
}

// KeepValidTrace clears e's trace context unless its traceparent is valid
// ([ValidTraceParent]), and its tracestate alone when it is longer than
// [MaxTraceStateLen]: a context the pipeline cannot read is not carried
// (the W3C rule: a malformed traceparent is ignored, as if absent).
func (e *Event) KeepValidTrace() {
	if e.TraceParent == "" {
		e.TraceState = ""
		return
	}
	if !ValidTraceParent(e.TraceParent) {
		e.TraceParent, e.TraceState = "", ""
		return
	}
	if len(e.TraceState) > MaxTraceStateLen {
		e.TraceState = ""
	}
}
