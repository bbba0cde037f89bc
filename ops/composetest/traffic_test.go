package composetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// symbols are instruments of the sample reference data listed on XNAS.
var symbols = []string{"AAPL", "MSFT", "AMZN", "GOOGL", "NVDA", "META", "TSLA"}

// newH2CClient returns a client that speaks HTTP/2 with prior knowledge
// (h2c) to http:// URLs, as a market-data publisher would.
func newH2CClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{
		Transport: &http.Transport{Protocols: &p, MaxIdleConnsPerHost: 16},
		Timeout:   10 * time.Second,
	}
}

// quotesJSON returns a JSON array of n valid quotes, the i-th for
// symbols[(first+i) % len(symbols)].
func quotesJSON(first, n int) []byte {
	b := []byte{'['}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		k := first + i
		bid := 100 + float64(k%500)/100
		b = fmt.Appendf(b, `{"symbol":%q,"bid":%s,"ask":%s,"bid_size":%d,"ask_size":%d,"venue":"XNAS"}`,
			symbols[k%len(symbols)], strconv.FormatFloat(bid, 'f', 2, 64), strconv.FormatFloat(bid+0.03, 'f', 2, 64),
			100+k%7*100, 200+k%5*100)
	}
	return append(b, ']')
}

// reply is a gateway's answer.
type reply struct {
	status     int
	proto      int // major HTTP version
	body       []byte
	retryAfter string
}

// postQuotes posts body to gateway's POST /v1/events/quote; represent asks
// for the enriched result (Prefer: return=representation).
func postQuotes(ctx context.Context, c *http.Client, gateway string, body []byte, represent bool) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gateway+"/v1/events/quote", bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if represent {
		req.Header.Set("Prefer", "return=representation")
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, proto: resp.ProtoMajor, body: b, retryAfter: resp.Header.Get("Retry-After")}, nil
}

// backoff returns how long a polite client waits before it retries an
// answer of 429 or 503: the Retry-After seconds, at most max.
func (r reply) backoff(max time.Duration) time.Duration {
	d := 100 * time.Millisecond
	if secs, err := strconv.Atoi(r.retryAfter); err == nil && secs > 0 {
		d = time.Duration(secs) * time.Second
	}
	return min(d, max)
}

// acceptedIDs reads the ids of a 202 answer: {"accepted": n, "ids": [...]}.
func acceptedIDs(body []byte) ([]string, error) {
	var a struct {
		Accepted int      `json:"accepted"`
		IDs      []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("decoding 202 body %q: %w", body, err)
	}
	if a.Accepted != len(a.IDs) {
		return nil, fmt.Errorf("202 body says accepted %d with %d ids", a.Accepted, len(a.IDs))
	}
	return a.IDs, nil
}

// stream sends a steady, open-loop stream of quotes: every interval one
// request of perRequest quotes, to the gateways in turn, with at most
// maxInFlight requests outstanding (a tick that finds them all busy is
// counted as skipped). It records the ids the gateways accepted, with the
// time each request was sent, and every status.
type stream struct {
	client      *http.Client
	gateways    []string
	perRequest  int
	interval    time.Duration
	maxInFlight int

	mu       sync.Mutex
	sent     map[string]time.Time // accepted id → when its request was sent
	requests []sentRequest
	skipped  int
}

// sentRequest is one request of a stream; status 0 is a transport error.
type sentRequest struct {
	at     time.Time
	gw     int // index in gateways
	status int
}

func newStream(c *http.Client, gateways []string, perRequest int, interval time.Duration) *stream {
	return &stream{client: c, gateways: gateways, perRequest: perRequest, interval: interval,
		maxInFlight: 64, sent: make(map[string]time.Time)}
}

// run streams until ctx ends, then waits for the requests in flight.
func (s *stream) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, s.maxInFlight)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			s.mu.Lock()
			s.skipped++
			s.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.send(n)
		}()
	}
}

// send posts request n, with its own deadline: the stream's context only
// stops new requests.
func (s *stream) send(n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := time.Now()
	r, err := postQuotes(ctx, s.client, s.gateways[n%len(s.gateways)], quotesJSON(n*s.perRequest, s.perRequest), false)
	var ids []string
	if err == nil && r.status == http.StatusAccepted {
		ids, err = acceptedIDs(r.body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, sentRequest{at: at, gw: n % len(s.gateways), status: r.status})
	if err != nil {
		return
	}
	for _, id := range ids {
		s.sent[id] = at
	}
}

// sentIDs returns the accepted ids with their send times.
func (s *stream) sentIDs() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]time.Time, len(s.sent))
	for id, at := range s.sent {
		m[id] = at
	}
	return m
}

// statuses counts the requests sent at or after from by status (0:
// transport error), and returns the ticks skipped.
func (s *stream) statuses(from time.Time) (map[int]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int]int{}
	for _, r := range s.requests {
		if !r.at.Before(from) {
			m[r.status]++
		}
	}
	return m, s.skipped
}

// statusesOf counts by status the requests to gateway gw sent in [from, to)
// that have been answered (or failed) by now.
func (s *stream) statusesOf(gw int, from, to time.Time) map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int]int{}
	for _, r := range s.requests {
		if r.gw == gw && !r.at.Before(from) && r.at.Before(to) {
			m[r.status]++
		}
	}
	return m
}
