// Package gateway is sluice's HTTP edge: it serves HTTP/1.1, h2c (HTTP/2
// with prior knowledge) and TLS h2 on one data listener, decodes request
// bodies (JSON, NDJSON, MessagePack, CloudEvents structured, batched and
// binary mode; package [github.com/sluice-dev/sluice/gateway/decode]) into
// events, wraps them in MessagePack CloudEvents, and
// micro-batches them onto <prefix>.ingest.<type>. Requests that ask for the
// result (Prefer: return=representation) wait for the workers' reply frames,
// which arrive on one inbox subscription per gateway and are matched to the
// waiting requests by correlation ids carried inside the frames. The others
// are answered 202 with the ids once their batch is handed to NATS, or with
// no body at all for Prefer: return=minimal.
//
// Accepted connections are shaped for Go's HTTP servers (package
// [github.com/sluice-dev/sluice/gateway/netconn]):
// reads go through a 16 KiB buffer, and writes through a coalescer that
// sends what arrives while one socket write runs in the next, so that the
// answers of a micro-batch leave in one syscall rather than one or two
// each.
//
// It sits between clients and NATS and depends only on schemas: it never
// imports workers; the two meet on NATS through the contract in schemas.
package gateway
