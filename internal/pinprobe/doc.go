// Package pinprobe holds the probes behind workers/PARTITIONS.md's "What the
// server does": how JetStream pull consumers with the pinned-client priority
// policy, and without it with MaxAckPending 1, spread partitions over
// workers, fail over and perform. Its tests log figures and assert little,
// so they run only when asked: SLUICE_PROBES=1 go test -v ./internal/pinprobe.
package pinprobe
