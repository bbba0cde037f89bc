// Package workers is sluice's worker runtime: it consumes the batch frames
// that the gateway publishes, validates and enriches every event in them and
// publishes the outcome.
//
// It sits after NATS in the flow:
//
//	gateway --batch frame--> <prefix>.ingest.<type>   (queue group = worker group)
//	  worker: decode -> validate -> enrich -> [extra stages]
//	    -> <prefix>.enriched.<type>.<symbol>   one message per enriched event
//	    -> <prefix>.dlq.<type>                 one dead letter per rejected event
//	    -> the batch's reply inbox             one reply frame per batch, for the
//	                                           events that wait for a result
//
// A [Worker] is one member of a worker group (Options.Group, for example
// "quotes"). Every process of a group subscribes to the same ingest subjects
// with the group name as the NATS queue group, so NATS hands each batch to
// exactly one member; a group scales by starting more processes. In core
// delivery (the default, Options.Delivery) the worker uses core NATS
// (at-most-once): a batch delivered to a worker that dies is lost, and a
// worker that cannot keep up drops batches past its pending limits and
// counts them (sluice_worker_slow_consumer_drops_total).
//
// In durable delivery a kind's batches are stored in the ingest stream and
// consumed through the group's durable pull consumer. The worker stores a
// batch's enriched events and dead letters in their streams (each with a
// Nats-Msg-Id from the event's CloudEvents source and id, so that a batch
// processed twice stores nothing twice), then sends its replies, then acks
// it. A batch that fails is nakked and delivered again after
// Options.NakDelay; on its last delivery (Options.MaxDeliver) it is stored
// whole in <prefix>.dlq.<type> with its reason and delivery count and
// terminated. A store that fails for a while (no stream leader, an ack
// timeout, a lost connection) is not a failure of the batch: the worker
// retries it in place, keeping the batch with in-progress acks, so an
// outage spends none of its deliveries. A worker that dies holding a batch
// loses nothing: the stream delivers it again after Options.AckWait.
//
// Inside a process, each subscription hands its messages to one bounded
// queue, consumed by a fixed pool of goroutines. Each goroutine owns all the
// state it needs (decoded events, encode buffers, a cache of enriched subject
// names), so processing takes no lock and, once warm, allocates nothing per
// valid event; see [Batch] and [Stage] for the pipeline a batch runs through.
//
// The wire formats (batch frame, enriched event, dead letter, reply frame)
// are package schemas'; reference data and the derived fields are package
// enrich's. This package never imports the gateway: they meet only on NATS.
package workers
