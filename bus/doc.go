// Package bus is the transport seam between sluice's components and NATS.
//
// The gateway publishes batch frames on <prefix>.ingest.<type>; workers
// consume them, publish enriched events on <prefix>.enriched.<type>.<symbol>
// and dead letters on <prefix>.dlq.<type>. bus carries those messages in one
// of two delivery modes, behind one API, so that the gateway and the workers
// are written once:
//
//   - core: plain NATS. A [Core] publish resolves its [Ack] as soon as the
//     message is handed to the client's buffer: it says nothing about
//     delivery, and a message published while no worker listens, or held by
//     a worker that dies, is lost. A [Queue] consumer is a queue subscription
//     whose Ack, Nak and Term do nothing.
//   - durable: JetStream. A [Durable] publish resolves its [Ack] when the
//     stream has stored the message (on a replicated stream, a quorum of its
//     replicas), with the stream sequence. A [Pull] consumer is a durable
//     pull consumer per worker group with explicit acks: a message not acked
//     within AckWait is delivered again, up to MaxDeliver times.
//
// [Apply] creates or updates the three streams a pipeline needs ([Streams]),
// named after its subject prefix so that several pipelines share a cluster,
// over the subjects of the durable types alone; it never changes an
// existing stream's retention, storage or discard policy, never removes a
// subject silently, refuses a stream that captures a core type's subject
// ([CapturedError], also checked by [CheckCaptured]), and changes only the
// limits its options set (a zero one keeps the stream's). [Retrier] retries failed durable publishes within
// a [Budget], a fixed fraction of recent successful traffic, so that a sick
// cluster is not hit by a retry storm.
//
// bus depends on package schemas and nats.go alone.
package bus
