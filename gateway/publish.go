package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// framePublisher hands a batcher's finished frames to NATS: [corePub]
// (handed to the client) or [durablePub] (stored by JetStream). From
// publish on it owns f: it moves f's events in the depth (depth.go), and
// ends with b.finish(f), which wakes f's requests, at once (core) or once
// the stream has answered (durable).
type framePublisher interface {
	publish(b *batcher, f *batch)
	// maxPayload is the connected server's max_payload, 0 while unknown
	// (before the connection has met a server).
	maxPayload() int
}

var (
	_ framePublisher = corePub{}
	_ framePublisher = (*durablePub)(nil)
)

// corePub publishes frames on core NATS: a batch is done once the client
// has it in its buffer.
type corePub struct{ nc *nats.Conn }

func (c corePub) maxPayload() int { return int(c.nc.MaxPayload()) }

// publish sends f with the batcher's inbox as its reply subject (the
// server's no-responders notice names a group that is gone) and wakes its
// requests.
func (c corePub) publish(b *batcher, f *batch) {
	h := coreHeaders.Get().(*coreHeader)
	defer coreHeaders.Put(h)
	msg := nats.Msg{Subject: b.subject, Reply: b.inbox, Data: f.buf, Header: h.set(f, b.inbox)}
	if f.tr != nil && b.tracer != nil {
		msg.Header[headerTraceParent] = []string{b.startBatchSpan(f)}
		defer delete(msg.Header, headerTraceParent) // the header is pooled
	}
	// The batch's timestamp (Sluice-Sent) is the time the outstanding
	// batches record, set before the publish: a worker's done frame can
	// come back before PublishMsg returns.
	f.sent = time.Now().UnixNano()
	h.stamp(f.sent)
	b.sentCore(f)
	f.err = c.nc.PublishMsg(&msg)
	if f.err != nil {
		b.refusedCore(f)
	}
	b.finish(f)
}

// coreHeader is a core batch frame's NATS header, reused across batches:
// nats.go encodes a message's header into its own buffer within PublishMsg,
// so the map, its value slices and the sequence's digits are free again once
// PublishMsg returns. Building them per batch cost six allocations, most of a
// lone event's.
type coreHeader struct {
	h                                nats.Header
	frame, count, batch, reply, sent []string
	digits                           [20]byte // the batch sequence, in decimal
	sentDigits                       [20]byte // the batch's timestamp, in decimal
}

var coreHeaders = sync.Pool{New: func() any {
	h := &coreHeader{frame: []string{schemas.FrameBatchV1}, count: []string{""}, batch: []string{""}, reply: []string{""}, sent: []string{""}}
	h.h = nats.Header{schemas.HeaderFrame: h.frame, schemas.HeaderCount: h.count, schemas.HeaderBatch: h.batch, schemas.HeaderSent: h.sent}
	return h
}}

// stamp sets the frame's Sluice-Sent header to t; valid until the next
// stamp.
func (h *coreHeader) stamp(unixNano int64) {
	d := strconv.AppendInt(h.sentDigits[:0], unixNano, 10)
	h.sent[0] = unsafe.String(&d[0], len(d))
}

// set fills the header for f (inbox: the reply inbox of a batch in which
// an event waits) and returns it; valid until the next set.
func (h *coreHeader) set(f *batch, inbox string) nats.Header {
	h.count[0] = eventCount(f.n)
	d := strconv.AppendUint(h.digits[:0], f.gen, 10)
	h.batch[0] = unsafe.String(&d[0], len(d))
	if f.wait {
		h.reply[0] = inbox
		h.h[schemas.HeaderReply] = h.reply
	} else {
		delete(h.h, schemas.HeaderReply)
	}
	return h.h
}

// eventCounts are the decimal strings of the counts a batch usually has.
var eventCounts = func() (s [1025]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// eventCount returns n in decimal, without allocating for n ≤ 1,024.
func eventCount(n int) string {
	if n >= 0 && n < len(eventCounts) {
		return eventCounts[n]
	}
	return strconv.Itoa(n)
}

// publishProblem is the answer to a request whose batch NATS would not
// take. Only a transient failure (no connection, reconnecting with a full
// buffer, draining) is 503 with Retry-After; a batch over max_payload
// (which the size checks leave only to a server whose max_payload shrank
// under a reconnect) is 413, and a message NATS refuses by its shape is 500,
// neither worth retrying as it was.
func publishProblem(err error) *problem {
	switch {
	case errors.Is(err, bus.ErrStreamFull):
		return &problem{Status: http.StatusServiceUnavailable, RetryAfter: 5,
			Detail: fmt.Sprintf("storing the batch: %v: the ingest stream holds its most bytes of batches no worker has processed; retry later", err)}
	case errors.Is(err, bus.ErrBackpressure), errors.Is(err, bus.ErrRetryBudget), errors.Is(err, bus.ErrAckTimeout), errors.Is(err, bus.ErrNoStream):
		return &problem{Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Detail: fmt.Sprintf("storing the batch: %v; the request's events in that batch may or may not be stored: retry with the same ids (an event's id, or Idempotency-Key) and they are stored once", err)}
	case errors.Is(err, nats.ErrMaxPayload):
		return &problem{Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("handing a batch to NATS: %v (the server's max_payload is smaller since a reconnect?); the request's events in that batch were not published", err)}
	case errors.Is(err, nats.ErrBadSubject), errors.Is(err, nats.ErrInvalidMsg),
		errors.Is(err, nats.ErrHeadersNotSupported), errors.Is(err, nats.ErrBadHeaderMsg):
		return &problem{Status: http.StatusInternalServerError,
			Detail: fmt.Sprintf("handing the batch to NATS: %v", err)}
	}
	return &problem{Status: http.StatusServiceUnavailable, RetryAfter: 1,
		Detail: fmt.Sprintf("handing the batch to NATS: %v", err)}
}
