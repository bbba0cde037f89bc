//go:build unix

package workers_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

// TestStageDelayWaitsWithoutCPU: --stage-delay makes a batch of n events
// take n × delay of wall time while the process's CPU time stays far
// below it (it sleeps rather than spins).
func TestStageDelayWaitsWithoutCPU(t *testing.T) {
	url := runNATS(t)
	const n, delay = 20, 10 * time.Millisecond
	startWorker(t, url, workers.Options{Group: "quotes", StageDelay: delay, Concurrency: 1})
	nc := connect(t, url)
	reply, replies := inbox(t, nc)
	evs := make([]*schemas.Event, n)
	for i := range evs {
		evs[i] = quote(fmt.Sprintf("q%d", i), "AAPL", 1, 2, 1, uint32(i))
	}
	cpu0 := processCPU(t)
	start := time.Now()
	publishBatch(t, nc, schemas.KindQuote, reply, evs...)
	if res := waitReply(t, replies); len(res) != n {
		t.Fatalf("%d results, want %d", len(res), n)
	}
	wall, cpu := time.Since(start), processCPU(t)-cpu0
	if wall < n*delay {
		t.Errorf("batch answered after %v, want at least %v", wall, n*delay)
	}
	if cpu > n*delay/2 {
		t.Errorf("used %v of CPU over %v: the delay should not burn CPU", cpu, wall)
	}
}

// processCPU is this process's user and system CPU time so far.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestStageDelayCapsTheRate: the delay is one downstream shared by the
// worker's batches, so four batches at a time still take n × delay.
func TestStageDelayCapsTheRate(t *testing.T) {
	url := runNATS(t)
	const batches, per, delay = 10, 2, 5 * time.Millisecond
	startWorker(t, url, workers.Options{Group: "quotes", StageDelay: delay, Concurrency: 4})
	nc := connect(t, url)
	reply, replies := inbox(t, nc)
	start := time.Now()
	for b := range batches {
		publishBatch(t, nc, schemas.KindQuote, reply, quote(fmt.Sprintf("a%d", b), "AAPL", 1, 2, 1, 0),
			quote(fmt.Sprintf("b%d", b), "AAPL", 1, 2, 1, 1))
	}
	for range batches {
		waitReply(t, replies)
	}
	if wall, want := time.Since(start), batches*per*delay; wall < want {
		t.Errorf("%d events done in %v with concurrency 4, want at least %v (one event per %v)", batches*per, wall, want, delay)
	}
}
