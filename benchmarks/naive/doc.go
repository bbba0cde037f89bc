// Package naive is a deliberately conventional HTTP-to-NATS gateway and
// worker, kept as a reference point for sluice's benchmark suite: it shows
// what sluice's design buys over the code most people would write first.
//
// The gateway decodes JSON request bodies with encoding/json into structs,
// wraps each event in a JSON CloudEvents envelope, and sends the request's
// events as one NATS message: nc.Publish for fire-and-forget, nc.Request when
// the caller asks for the result. There is no micro-batching across requests,
// no hand-written codec and no buffered reader. The worker queue-subscribes,
// decodes the JSON, validates and enriches with the same rules and reference
// data as sluice's workers (schemas.Validate, enrich.Enricher), publishes one
// enriched JSON event per message (dead letters on <prefix>.dlq.<type>) and
// responds with the results. Everything that is not the point (ids,
// subjects, HTTP protocols) matches sluice, so that the comparison is about
// the design and not about the set-up.
//
// It is not part of the product: nothing outside benchmarks imports it.
package naive
