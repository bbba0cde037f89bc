// Package loadgen is the load generator of sluice's benchmark suite: an
// HTTP/1.1, h2c and h2 client that drives a server at a fixed offered rate
// (open loop) or with a fixed number of requests in flight (closed loop),
// with realistic market-data payloads, latency in HDR histograms, a live
// progress line and an end-to-end [Observer] that counts on NATS what came
// out of the pipeline.
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
