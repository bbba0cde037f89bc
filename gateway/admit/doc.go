// Package admit decides, before a request's body is read, whether the
// gateway takes it: client identity (API keys or the remote address), a
// per-client token bucket, an adaptive (AIMD) concurrency limit per worker
// group, and queue-depth shedding by priority, driven by the load reports
// the workers publish. Each decision is cheap, allocation-free on the
// admitted path, and counted.
//
// It sits inside the gateway, in front of decoding and batching, and knows
// nothing of HTTP beyond header values.
package admit
