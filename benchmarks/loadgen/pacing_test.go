package loadgen

import (
	"context"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestOpenLoopPacingSmoke is the short, lenient form of TestOpenLoopPacing
// that also runs under the race detector, where it checks the counts only:
// the arrival times are upper time bounds, which a race-instrumented build
// on a busy machine need not meet.
func TestOpenLoopPacingSmoke(t *testing.T) {
	checkPacing(t, 500, time.Second, 0.15, 150*time.Millisecond)
}

// checkPacing runs open loop at rate for d and checks the arrivals at the
// server, the scheduled count and the offered rate against rate within tol,
// and, without the race detector, that the arrivals spread over d and nine
// in ten come within lagBound of their schedule.
func checkPacing(t *testing.T, rate float64, d time.Duration, tol float64, lagBound time.Duration) {
	t.Helper()
	ts := newTestServer(t, false, nil)
	// A generous in-flight bound: on a busy machine the server may stall
	// for a while, and this test is about the schedule, not the server.
	res, err := Run(context.Background(), Config{Target: ts.URL, Mode: Open, Rate: rate,
		Client:   ClientOptions{Conns: 4, Streams: 250},
		Payloads: testPayloads(t, PayloadOptions{}), Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	want := rate * d.Seconds()
	posts := float64(ts.arrived.Load())
	t.Logf("scheduled %d, arrived %.0f, answered %d, offered %.1f/s, dropped %d, p99 %.2f ms",
		res.Scheduled, posts, res.Answered, res.OfferedPerSec, res.Dropped, res.Latency.P99)
	if math.Abs(posts-want)/want > tol {
		t.Fatalf("%.0f requests arrived, want %.0f within %.0f%%", posts, want, tol*100)
	}
	if math.Abs(float64(res.Scheduled)-want) > 1 || math.Abs(res.OfferedPerSec-rate)/rate > tol {
		t.Fatalf("scheduled %d at %.1f/s, want %.0f at %.0f/s", res.Scheduled, res.OfferedPerSec, want, rate)
	}
	if res.Dropped != 0 || res.Errors != 0 || float64(res.Answered) != posts {
		t.Fatalf("dropped %d, errors %d, answered %d of %.0f", res.Dropped, res.Errors, res.Answered, posts)
	}
	if raceEnabled {
		return
	}
	ts.mu.Lock()
	times := slices.Clone(ts.times)
	ts.mu.Unlock()
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	first, last := times[0], times[len(times)-1]
	if spread := last.Sub(first); math.Abs(spread.Seconds()-d.Seconds())/d.Seconds() > max(tol, 0.05) {
		t.Fatalf("arrivals spread over %v, want %v", spread, d)
	}
	// The counts above hold by construction whatever the timing: the
	// schedule is duration × rate. The pace is in the arrival times: the
	// i-th arrival should come about i/rate after the first, not in bursts
	// (one in ten may be off: a stall of a busy machine, which the schedule
	// then catches up).
	late := 0
	for i, at := range times {
		lag := at.Sub(first) - time.Duration(float64(i)*float64(time.Second)/rate)
		if lag > lagBound || lag < -lagBound {
			late++
		}
	}
	if frac := float64(late) / float64(len(times)); frac > 0.1 {
		t.Fatalf("%.0f%% of arrivals more than %v off their schedule: not paced at %.0f/s", frac*100, lagBound, rate)
	}
}

// TestOpenLoopDropsPastInFlightBound checks that a stalled server does not
// stall the schedule: requests past the in-flight bound are dropped and
// counted, and the latency of the ones that waited counts from their
// intended send time.
func TestOpenLoopDropsPastInFlightBound(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServer(t, false, func(n int64) int {
		if n == 1 {
			time.AfterFunc(400*time.Millisecond, func() { close(release) })
		}
		if n <= 20 {
			<-release
		}
		return http.StatusAccepted
	})
	res, err := Run(context.Background(), Config{Target: ts.URL, Mode: Open, Rate: 1000, MaxInFlight: 20,
		Client:   ClientOptions{Conns: 2, Streams: 10},
		Payloads: testPayloads(t, PayloadOptions{}), Duration: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled < 590 || res.Scheduled > 601 {
		t.Fatalf("scheduled %d, want 600", res.Scheduled)
	}
	if res.Dropped < 250 || res.Answered+res.Dropped != res.Scheduled {
		t.Fatalf("dropped %d, answered %d of %d", res.Dropped, res.Answered, res.Scheduled)
	}
	if res.Latency.Max < 300 {
		t.Fatalf("max latency %.1f ms: the stall does not show", res.Latency.Max)
	}
}

// TestClosedLoopCounts checks the per-status counts and the shed histogram
// of a closed-loop run against a server that sheds every fourth request.
func TestClosedLoopCounts(t *testing.T) {
	ts := newTestServer(t, false, func(n int64) int {
		if n%4 == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	var starts, ends int
	res, err := Run(context.Background(), Config{Target: ts.URL, Client: ClientOptions{Conns: 2, Streams: 4},
		Payloads: testPayloads(t, PayloadOptions{Batch: 5, Format: FormatNDJSON}),
		Warmup:   50 * time.Millisecond, Duration: 300 * time.Millisecond,
		OnWindow: func(start bool) {
			if start {
				starts++
			} else {
				ends++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if starts != 1 || ends != 1 {
		t.Fatalf("window hooks: %d starts, %d ends", starts, ends)
	}
	shed := res.Status[503]
	if res.Answered == 0 || shed == 0 || res.Shed.Count != int64(shed) || res.Events != 5*res.Answered {
		t.Fatalf("answered %d events %d status %v shed latency %+v", res.Answered, res.Events, res.Status, res.Shed)
	}
	if res.ReqPerSec <= 0 || res.Latency.Count != int64(res.Answered) {
		t.Fatalf("rate %.0f latency %+v", res.ReqPerSec, res.Latency)
	}
}

// TestLongClosedRun checks that a closed-loop run longer than the drain
// timeout is not cut short: the timeout counts from the window's end. The
// drain timeout leaves a second for the last requests (a 200 ms one was
// cut under -race on a loaded machine: "errors 1 map[context canceled:1]").
func TestLongClosedRun(t *testing.T) {
	ts := newTestServer(t, false, nil)
	res, err := Run(context.Background(), Config{Target: ts.URL, Client: ClientOptions{Conns: 1, Streams: 2},
		Payloads: testPayloads(t, PayloadOptions{}), Warmup: 100 * time.Millisecond, Duration: 1500 * time.Millisecond,
		DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Answered == 0 {
		t.Fatalf("errors %d %v, answered %d", res.Errors, res.ErrorKinds, res.Answered)
	}
}
