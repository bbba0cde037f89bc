// Package stream serves sluice's enriched events to HTTP subscribers:
// GET /v1/streams/{type}?symbols=... answered as server-sent events
// (Accept: text/event-stream), NDJSON (Accept: application/x-ndjson) or a
// WebSocket on the same path: an HTTP/1.1 Upgrade, or over HTTP/2 an
// extended CONNECT (RFC 8441, through internal/h2ws).
//
// It sits after the workers in the flow: workers publish one enriched event
// per NATS message on <prefix>.enriched.<type>.<symbol>; a [Hub] holds one
// reference-counted NATS subscription per filter (a symbol's subject, or the
// type's wildcard for symbols=*), shared by every subscriber that asks for
// it, feeds a bounded last-value cache per type and symbol from it, and fans
// each event out to per-subscriber bounded queues without ever blocking
// (feed.go, queue.go).
//
// Per subscriber: the snapshot (the cached last event of each requested
// symbol), then a sluice.snapshot.end marker, then live events, with no gap
// and no duplicate across the boundary: the subscriber is registered and its
// snapshot copied under the same lock that orders the live events. Quotes are
// conflated when the client reads slower than they arrive (the pending event
// of a symbol is replaced by the newer one, which counts what it replaced in
// sluicereplaced); trades never are: a subscriber that falls more than its
// buffer behind on trades gets a final sluice.stream.end event naming its
// resume token and is disconnected.
//
// Core mode (today): the per-symbol sequence (sluiceseq) counts the events
// of that symbol this gateway has received since it began receiving them,
// and there is nothing to replay from, so a resume (Last-Event-ID, since_seq,
// since) is answered 409 with a problem+json, or by a snapshot when the
// request says fallback=snapshot.
//
// Durable mode: a type whose events a [Replayer] stores ([JetStream], the
// enriched stream) is fed by one ordered consumer on the stream instead of
// core subscriptions; positions (resume tokens) are stream sequences,
// resumes replay from the stream and then go live with no gap and no
// duplicate, and sluiceseq numbers a symbol's events within one
// subscription (see durable.go).
//
// It depends on schemas and nats.go; it does not import package gateway,
// which mounts [Hub] on its data listener.
package stream
