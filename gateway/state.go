package gateway

import (
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/schemas"
)

// reqState is the per-request scratch space, pooled: the body, the decoded
// events, their encodings, the generated ids and the response.
type reqState struct {
	body    []byte
	events  []schemas.Event
	enc     []byte
	ends    []int
	ids     []byte
	out     []byte
	touched []*batch
	single  bool
	// A partitioned type's request: each event's partition, the events'
	// order grouped by partition, and their encodings so grouped
	// (partitioned.add).
	part  []uint8
	order []int32
	penc  []byte
	pends []int
	// trace is the request's W3C trace context (Traceparent, Tracestate
	// headers), empty when it has none or an invalid one.
	trace, traceState string
	// The request's stage times (sluice_gateway_stage_seconds): admitted,
	// handed to the batcher, and its batches published (or stored).
	admitted, added, published int64 // Unix ns
	// span is the request's span when it is traced, else nil; sc its
	// context, which the request's batches link to.
	span   trace.Span
	sc     trace.SpanContext
	status int // the answer's status, once answered
}

// maxPooledBytes keeps unusually large buffers out of the pool.
const maxPooledBytes = 1 << 20

var statePool = sync.Pool{New: func() any {
	return &reqState{
		body:   make([]byte, 0, 1024),
		events: make([]schemas.Event, 0, 1),
		enc:    make([]byte, 0, 512),
		ends:   make([]int, 0, 1),
		ids:    make([]byte, 0, 64),
		out:    make([]byte, 0, 512),
	}
}}

func getState() *reqState { return statePool.Get().(*reqState) }

func putState(st *reqState) {
	if cap(st.body) > maxPooledBytes || cap(st.enc) > maxPooledBytes || cap(st.out) > maxPooledBytes || cap(st.penc) > maxPooledBytes || cap(st.events) > 4096 {
		return
	}
	clear(st.touched)
	st.touched = st.touched[:0]
	st.trace, st.traceState = "", ""
	st.span, st.sc, st.status = nil, trace.SpanContext{}, 0
	statePool.Put(st)
}
