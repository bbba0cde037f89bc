// Package benchmarks is sluice's benchmark suite: it starts the processes
// under test (NATS, the gateway, the workers, the baseline servers and the
// naive reference pipeline), drives them with the load generator of package
// loadgen through named scenarios, reads the CPU time each process spends,
// and writes the results as JSON, as markdown (RESULTS.md) and as an SVG
// plot. `sluice bench` is its command line; see README.md for the method.
//
// Every process under test is a child process of its own, so that the CPU
// time of each can be read from /proc and reported per event. Ratios are
// taken between runs of the same invocation, baseline and scenario
// alternating, never against figures from another day or machine.
package benchmarks
