// Package storebatch measures how a durable worker can store a batch's
// enriched events in the enriched stream (issue #11): 100 events of 300
// bytes, each with its Nats-Msg-Id, into a stream on an embedded
// nats-server with file storage, three ways:
//
//   - async: 100 asynchronous publishes, then wait for every ack (what
//     sluice's workers do);
//   - atomic: nats-server's atomic batch publish (2.12, allow_atomic), with
//     orbit.go's jetstreamext.PublishMsgBatch: stored all or nothing;
//   - fast: the fast batch publish (2.14, allow_batched), with
//     jetstreamext.FastPublisher: stored as sent, acked by flow (one ack
//     per 100 messages), committed at the end.
//
// TestRedelivered checks what each does with a batch stored again (a
// redelivered batch, whose enriched events the stream already holds):
// async and fast store nothing twice and go on, atomic refuses the whole
// batch.
//
// It is its own module so that orbit.go, which needs a newer nats.go than
// sluice's, stays out of sluice's build: run it from this folder,
// `go test -run '^$' -bench . -benchmem`.
package storebatch
