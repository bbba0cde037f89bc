package benchmarks

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// rejectedMetric is the gateway's counter of refused requests, labelled by
// reason, priority and group.
const rejectedMetric = "sluice_gateway_rejected_total{"

// scrapeRejected reads the gateway's refusals so far from its /metrics,
// summed by reason.
func scrapeRejected(ops string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + ops + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("reading the gateway's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the gateway's metrics: %s", resp.Status)
	}
	return parseRejected(bufio.NewScanner(resp.Body))
}

// parseRejected sums the rejectedMetric lines of a Prometheus text page by
// their reason label.
func parseRejected(sc *bufio.Scanner) (map[string]float64, error) {
	out := map[string]float64{}
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, rejectedMetric) {
			continue
		}
		_, labels, _ := strings.Cut(line, "{")
		labels, value, ok := strings.Cut(labels, "} ")
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("unreadable metrics line %q", line)
		}
		_, reason, _ := strings.Cut(labels, `reason="`)
		reason, _, _ = strings.Cut(reason, `"`)
		out[reason] += v
	}
	return out, sc.Err()
}

// rejectionWatch counts the gateway's refusals over a measured window.
type rejectionWatch struct {
	ops    string
	before map[string]float64
	delta  map[string]float64
	err    error
}

func (w *rejectionWatch) hook(start bool) {
	if w.ops == "" || w.err != nil {
		return
	}
	now, err := scrapeRejected(w.ops)
	if err != nil {
		w.err = err
		return
	}
	if start {
		w.before = now
		return
	}
	w.delta = map[string]float64{}
	for reason, v := range now {
		if d := v - w.before[reason]; d > 0 {
			w.delta[reason] = d
		}
	}
}
