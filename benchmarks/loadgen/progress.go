package loadgen

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// progress prints a line every second to cfg.Progress: offered and achieved
// rate over the last second, p50 and p99 of the answers in it, and the
// answers that were not 2xx (and errors and generator drops) since the
// start. The returned func stops it.
func (g *gen) progress(start time.Time) (stop func()) {
	if g.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastDone, lastIssued uint64
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				lastDone, lastIssued = g.printProgress(now, start, last, lastDone, lastIssued)
				last = now
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func (g *gen) printProgress(now, start, last time.Time, lastDone, lastIssued uint64) (uint64, uint64) {
	h := NewHistogram()
	var done, errs uint64
	var status map[int]uint64
	for _, s := range g.shards {
		snap := s.takeInterval(h)
		done += snap.done
		errs += snap.allErrs
		status = AddCounts(status, snap.allStatus)
	}
	issued := g.issued.Load()
	secs := now.Sub(last).Seconds()
	phase := "measuring"
	switch {
	case now.Before(g.winStart):
		phase = "warm-up"
	case !now.Before(g.winEnd):
		phase = "draining"
	}
	l := Summarize(h)
	fmt.Fprintf(g.cfg.Progress, "%-22s %5.1fs %-9s offered %9.0f/s achieved %9.0f/s p50 %7.2fms p99 %7.2fms%s\n",
		g.cfg.Label, now.Sub(start).Seconds(), phase, float64(issued-lastIssued)/secs, float64(done-lastDone)/secs,
		l.P50, l.P99, problems(status, errs, g.dropped.Load()))
	return done, issued
}

// problems formats the answers that were not 2xx, errors and drops.
func problems(status map[int]uint64, errs, dropped uint64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(status)) {
		if k < 200 || k >= 300 {
			fmt.Fprintf(&b, " %d:%d", k, status[k])
		}
	}
	if errs > 0 {
		fmt.Fprintf(&b, " err:%d", errs)
	}
	if dropped > 0 {
		fmt.Fprintf(&b, " dropped:%d", dropped)
	}
	return b.String()
}
