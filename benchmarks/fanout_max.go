package benchmarks

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The fanout scenario's largest-N ramp: subscriber counts past
// fanoutCounts, tried in order until one misses a target or a bound.
var fanoutRamp = []int{2000, 3000, 5000, 7000, 10_000, 14_000, 20_000}

// Bounds of the ramp: its wall time (a step is only started when the
// last step's time still fits), and what it leaves of the machine.
const (
	fanoutRampBudget = 4 * time.Minute
	fanoutMinMemFree = 1 << 30 // bytes of MemAvailable a step must leave
	fanoutFdReserve  = 512     // descriptors kept for everything else
)

// The fanout targets a step must meet.
const (
	fanoutMinRatio = 0.5 // SSE delivered over direct NATS delivered
	fanoutMaxP99   = 50  // ms, SSE publish to receipt
)

// fanoutLargest ramps N over fanoutRamp with SSE subscribers of a core
// gateway and as many direct NATS subscribers, and notes the largest N
// that met both targets, the step that did not and why, and why the ramp
// stopped when a bound stopped it first. Each step has a gateway of its
// own, so that its memory per subscriber is not hidden by a heap that
// earlier steps grew.
func (s *suite) fanoutLargest(ctx context.Context, sr *ScenarioResult, largest fanoutRun) error {
	fds, err := raiseNoFile()
	if err != nil {
		return err
	}
	start := time.Now()
	var last time.Duration
	stop := ""
	for _, n := range fanoutRamp {
		switch free := memAvailable(); {
		case n+fanoutFdReserve > fds:
			stop = fmt.Sprintf("%d subscribers would pass this process's %d file descriptors (ulimit -n, raised to its hard limit)", n, fds)
		case largest.memPerSub > 0 && free > 0 && free-int64(3*float64(n)*largest.memPerSub) < fanoutMinMemFree:
			stop = fmt.Sprintf("%d subscribers would leave less than 1 GiB of the machine's %d MiB available", n, free>>20)
		case time.Since(start)+last > fanoutRampBudget:
			stop = fmt.Sprintf("the ramp's time budget of %v would pass before %d subscribers were measured", fanoutRampBudget, n)
		}
		if stop != "" {
			break
		}
		t0 := time.Now()
		env, err := s.fanoutEnv(ctx, fanoutPrefix, "core")
		if err != nil {
			return err
		}
		sse, direct, err := env.runBoth(ctx, s, n)
		env.close()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			stop = fmt.Sprintf("%d subscribers: %v", n, err)
			break
		}
		last = time.Since(t0)
		sr.Notes = append(sr.Notes, "ramp: "+sse.String(), "ramp: "+direct.String())
		s.log.Info("fanout ramp", "n", n, "sse", sse.String(), "direct", direct.String(), "took", last)
		if missed := fanoutMissed(sse, direct); missed != "" {
			stop = fmt.Sprintf("%d subscribers missed: %s", n, missed)
			break
		}
		largest = sse
		largest.label = fmt.Sprintf("%.2f× direct NATS", sse.delivered/max(direct.delivered, 1))
	}
	sr.Notes = append(sr.Notes, fmt.Sprintf("largest N that met both targets (SSE delivered ≥ %.1f× direct NATS, p99 ≤ %d ms): %d subscribers, "+
		"%.0f events/s delivered (%s), p99 %.2f ms, gateway memory %.1f KiB per idle subscriber; the ramp (%s) stopped because %s; it took %v",
		fanoutMinRatio, fanoutMaxP99, largest.subs, largest.delivered, largest.label, largest.p99, largest.memPerSub/1024,
		rampSteps(), stop, time.Since(start).Round(time.Second)))
	return nil
}

// fanoutMissed says which targets a count's SSE run missed against its
// direct NATS run ("" when it met both).
func fanoutMissed(sse, direct fanoutRun) string {
	var missed []string
	if ratio := sse.delivered / max(direct.delivered, 1); ratio < fanoutMinRatio {
		missed = append(missed, fmt.Sprintf("SSE delivered %.2f× direct NATS (target ≥ %.1f×)", ratio, fanoutMinRatio))
	}
	if sse.p99 > fanoutMaxP99 {
		missed = append(missed, fmt.Sprintf("SSE p99 %.1f ms (target ≤ %d ms)", sse.p99, fanoutMaxP99))
	}
	return strings.Join(missed, ", ")
}

func rampSteps() string {
	var b strings.Builder
	for i, n := range fanoutRamp {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// runBoth measures n SSE subscribers of e's gateway, then n direct NATS
// subscribers.
func (e *fanoutEnv) runBoth(ctx context.Context, s *suite, n int) (sse, direct fanoutRun, err error) {
	if sse, err = e.runSSE(ctx, s, n, false); err != nil {
		return sse, direct, fmt.Errorf("SSE: %w", err)
	}
	if direct, err = e.runDirect(ctx, s, n); err != nil {
		return sse, direct, fmt.Errorf("direct NATS: %w", err)
	}
	return sse, direct, nil
}

// memAvailable returns the machine's MemAvailable in bytes (0 when
// unknown).
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
