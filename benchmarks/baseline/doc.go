// Package baseline is the reference server of sluice's benchmark suite: a
// trivial Go HTTP server that reads the request body and answers, over the
// same protocols and with the same HTTP/2 settings as the gateway (HTTP/1.1
// and h2c on one port, or TLS with h2 by ALPN). It does no work of its own,
// so its throughput and CPU per request are the limit that Go's HTTP layer
// sets on the machine; the suite reports every other figure as a ratio to
// it, measured in the same run.
//
// Its variants:
//
//   - [Plain] reads the body and answers 202 with a small JSON body, the
//     size of the gateway's {"accepted":1,"ids":[...]};
//   - [Buffered] does the same over connections shaped as the gateway
//     shapes them by default ([netconn.Options]): a 16 KiB buffered
//     reader (Go's h2c server otherwise reads each frame with its own
//     syscall) and coalesced writes (it otherwise writes once or twice per
//     response);
//   - [Body] answers 200 with a JSON body the size of an enriched event
//     (about 700 bytes): the fair reference for request-reply.
package baseline
