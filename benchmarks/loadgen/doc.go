// Package loadgen is the load generator of sluice's benchmark suite: an
// HTTP/1.1, h2c and h2 client that drives a server at a fixed offered rate
// (open loop) or with a fixed number of requests in flight (closed loop),
// with realistic market-data payloads, latency in HDR histograms, a live
// progress line and an end-to-end [Observer] that counts on NATS what came
// out of the pipeline.
//
// HTTP/1.1 goes through net/http's client, a goroutine per request in
// flight. HTTP/2 (h2c and h2) goes through the package's own client on the
// framer of golang.org/x/net/http2, built to cost the machine it shares
// with the server as little as h2load does: per connection one goroutine
// reads frames, records each answer at its END_STREAM and, closed loop,
// writes the next request at once, flushing when no whole frame is left to
// read (open loop adds one goroutine taking the schedule's tickets); the
// request headers are HPACK blocks encoded once per run, the bodies the
// pre-generated ones, and an answer's headers are decoded for :status
// only. It honours the server's stream limit, both flow-control windows,
// SETTINGS and PING, sends again what the server refused (REFUSED_STREAM)
// or did not process before a GOAWAY, and dials a new connection after a
// GOAWAY or a broken one.
//
// It sits beside the pipeline, not in it: the suite in package benchmarks
// starts the processes under test and drives them with [Run]; nothing in the
// product imports it.
//
// Open loop measures each request's latency from its intended send time,
// start + i/rate, not from when it was actually sent: a server that stalls
// delays every request scheduled during the stall, and those delays show in
// the percentiles (there is no coordinated omission). The number of requests
// in flight is bounded; a request scheduled when the bound is reached is not
// sent and is counted as dropped by the generator, so the schedule itself
// never waits for the server.
package loadgen
