package benchmarks

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// workerWork is what a worker's /metrics says it did so far: batches
// processed, events enriched, and the seconds its batches took from
// delivery to ack (sluice_worker_batch_duration_seconds' sum).
type workerWork struct {
	batches, events, busy float64
}

func (w workerWork) add(o workerWork) workerWork {
	return workerWork{batches: w.batches + o.batches, events: w.events + o.events, busy: w.busy + o.busy}
}

func (w workerWork) sub(o workerWork) workerWork {
	return workerWork{batches: w.batches - o.batches, events: w.events - o.events, busy: w.busy - o.busy}
}

// scrapeWork reads a worker's workerWork from its ops listener.
func scrapeWork(ops string) (workerWork, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + ops + "/metrics")
	if err != nil {
		return workerWork{}, fmt.Errorf("reading a worker's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return workerWork{}, fmt.Errorf("reading a worker's metrics: %s", resp.Status)
	}
	return parseWork(resp.Body)
}

// parseWork sums a Prometheus text page's lines of the worker metrics
// workerWork is made of, over their labels.
func parseWork(r io.Reader) (workerWork, error) {
	var w workerWork
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		name := line[:max(strings.IndexAny(line, "{ "), 0)]
		var dst *float64
		switch {
		case name == "sluice_worker_batches_total":
			dst = &w.batches
		case name == "sluice_worker_events_total" && strings.Contains(line, `outcome="enriched"`):
			dst = &w.events
		case name == "sluice_worker_batch_duration_seconds_sum":
			dst = &w.busy
		default:
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			return w, fmt.Errorf("unreadable metrics line %q", line)
		}
		*dst += v
	}
	return w, sc.Err()
}
