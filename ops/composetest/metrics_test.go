package composetest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Series of a quotes worker's /metrics the test reads.
const (
	quotesEnriched = `sluice_worker_events_total{group="quotes",type="quote",outcome="enriched"}`
	quotesQueued   = `sluice_worker_queued_batches{group="quotes"}`
	quotesInflight = `sluice_worker_inflight_batches{group="quotes"}`
	gomaxprocs     = `go_gomaxprocs` // a worker's default --concurrency
)

// scrape reads the Prometheus text of http://127.0.0.1:port/metrics into a
// map from series (name with labels, as written) to value.
func scrape(ctx context.Context, port int) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics on %d: %s", port, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// getOK reports nil when GET url answers 200 within 3 seconds.
func getOK(url string) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// eventually calls f every interval until it returns true or total has
// passed, and returns f's last answer. Unlike opstest.CheckFor it does not
// fail the test: the caller decides what a false means.
func eventually(total, every time.Duration, f func() bool) bool {
	deadline := time.Now().Add(total)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
}
