package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// slowStack starts a stack whose quote workers burn cost per event, with a
// fixed depth bound, so that tests can overload it on purpose.
func slowStack(t *testing.T, cost time.Duration, bound int64) *devStack {
	t.Helper()
	return stackWith(t, func(cfg *devConfig) {
		cfg.gateway.opts.Admission.Shed.MinDepth = bound
		cfg.gateway.opts.Admission.Shed.MaxDepth = bound
		cfg.worker.stageCost = cost
		cfg.worker.concurrency = 1
	})
}

func ndjsonQuotes(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(quoteJSON("AAPL", 100, 100.01))
		b.WriteByte('\n')
	}
	return b.String()
}

// outcome counts answers by status for one priority.
type outcome struct {
	accepted, shed, other atomic.Int64
	noRetryAfter          atomic.Int64
}

// TestShedsLowBeforeNormal overloads a slow group with a mix of priorities:
// low is shed before normal, critical (a small share the group can drain)
// is never shed, every shed answer carries Retry-After, every admitted event
// is processed, and the group admits low again within 2 s of the load
// stopping.
func TestShedsLowBeforeNormal(t *testing.T) {
	if testing.Short() {
		t.Skip("overload test")
	}
	st := slowStack(t, 200*time.Microsecond, 2000)
	enriched := count(t, st.nats.ClientURL(), "sluice.enriched.quote.>")
	url := "http://" + st.gw.Addr() + "/v1/events/quote"
	c := clients()["h2c"]
	body := ndjsonQuotes(10)
	prios := map[string]*outcome{"low": {}, "normal": {}, "critical": {}}
	send := func(prio string) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Sluice-Priority", prio)
		resp, err := c.Do(req)
		if err != nil {
			prios[prio].other.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		o := prios[prio]
		switch resp.StatusCode {
		case http.StatusAccepted:
			o.accepted.Add(1)
		case http.StatusServiceUnavailable:
			o.shed.Add(1)
			if resp.Header.Get("Retry-After") == "" {
				o.noRetryAfter.Add(1)
			}
		default:
			o.other.Add(1)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Closed loop, far past what 200 µs per event drains on one core.
	for i := 0; i < 24; i++ {
		prio := "low"
		if i%2 == 1 {
			prio = "normal"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					send(prio)
				}
			}
		}()
	}
	// Critical: a trickle the group can always drain.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				send("critical")
			}
		}
	}()
	time.Sleep(3 * time.Second) // the load's duration, not a wait for a condition
	close(stop)
	wg.Wait()
	low, normal, crit := prios["low"], prios["normal"], prios["critical"]
	t.Logf("low: %d admitted %d shed; normal: %d admitted %d shed; critical: %d admitted %d shed",
		low.accepted.Load(), low.shed.Load(), normal.accepted.Load(), normal.shed.Load(), crit.accepted.Load(), crit.shed.Load())
	if low.shed.Load() == 0 {
		t.Fatal("nothing was shed: the load did not exceed capacity")
	}
	lowShare := float64(low.shed.Load()) / float64(low.shed.Load()+low.accepted.Load())
	normalShare := float64(normal.shed.Load()) / float64(max(normal.shed.Load()+normal.accepted.Load(), 1))
	if lowShare <= normalShare {
		t.Errorf("low shed %.0f%%, normal %.0f%%: low must be shed first", 100*lowShare, 100*normalShare)
	}
	if crit.shed.Load() != 0 || crit.accepted.Load() == 0 {
		t.Errorf("critical: %d shed, %d admitted; want none shed", crit.shed.Load(), crit.accepted.Load())
	}
	for name, o := range prios {
		if o.noRetryAfter.Load() != 0 || o.other.Load() != 0 {
			t.Errorf("%s: %d shed answers without Retry-After, %d other answers", name, o.noRetryAfter.Load(), o.other.Load())
		}
	}
	admitted := 10 * (low.accepted.Load() + normal.accepted.Load() + crit.accepted.Load())
	opstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n, _ := enriched.get(); int64(n) != admitted {
			return fmt.Errorf("%d of %d admitted events enriched", n, admitted)
		}
		return nil
	})
	// Recovery: once drained, low is admitted again within 2 s.
	start := time.Now()
	opstest.CheckFor(t, 2*time.Second, 10*time.Millisecond, func() error {
		resp, _ := post(t, c, url, "application/x-ndjson", body, "Sluice-Priority", "low")
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("low still refused: %d", resp.StatusCode)
		}
		return nil
	})
	t.Logf("low admitted again %v after the drain", time.Since(start))
}

// TestGroupWithoutWorkers kills every quote worker: quote requests are
// refused with 503 within 100 ms while trades keep being served.
func TestGroupWithoutWorkers(t *testing.T) {
	// Core delivery whatever SLUICE_DELIVERY says: a durable group
	// without workers accepts (TestDurableGroupWithoutWorkers).
	st := stackWith(t, func(c *devConfig) { c.gateway.opts.Delivery = bus.Modes{} })
	c := clients()["h2c"]
	base := "http://" + st.gw.Addr() + "/v1/events/"
	if resp, body := post(t, c, base+"quote", "application/json", quoteJSON("AAPL", 1, 1.01)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("before: %d %s", resp.StatusCode, body)
	}
	st.conns[0].Close() // the quotes worker's connection: as if the process died
	st.workers = st.workers[1:]
	killed := time.Now()
	var refusedAfter time.Duration
	opstest.CheckFor(t, 2*time.Second, 2*time.Millisecond, func() error {
		resp, body := post(t, c, base+"quote", "application/json", quoteJSON("AAPL", 1, 1.01))
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if !strings.Contains(string(body), "no live workers") || resp.Header.Get("Retry-After") == "" {
			return fmt.Errorf("503 without the reason or Retry-After: %s", body)
		}
		refusedAfter = time.Since(killed)
		return nil
	})
	t.Logf("quotes refused %v after their workers died", refusedAfter)
	if refusedAfter > 100*time.Millisecond {
		t.Errorf("quotes refused %v after the workers died, want within 100ms", refusedAfter)
	}
	resp, body := post(t, c, base+"trade", "application/json", `{"symbol":"MSFT","price":411,"size":1,"venue":"XNAS"}`, "Prefer", "return=representation")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trades must be unaffected: %d %s", resp.StatusCode, body)
	}
}

// TestKeysAndRateLimits runs a stack with a keys file: no key is 401, a key
// for another type is 403, a client past its burst gets 429 with
// Retry-After and the RateLimit headers, and a priority above the key's
// maximum is lowered, not refused.
func TestKeysAndRateLimits(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.json")
	kf := fmt.Sprintf(`{"keys":[
	  {"client":"feed","sha256":%q,"rate":1,"burst":2,"max_priority":"normal","types":["quote"]},
	  {"client":"big","sha256":%q}]}`, admit.HashKey("feed-key"), admit.HashKey("big-key"))
	if err := os.WriteFile(keys, []byte(kf), 0o600); err != nil {
		t.Fatal(err)
	}
	st := stackWith(t, func(cfg *devConfig) { cfg.gateway.keysFile = keys })
	c := clients()["h2c"]
	base := "http://" + st.gw.Addr() + "/v1/events/"
	q := quoteJSON("AAPL", 1, 1.01)
	if resp, body := post(t, c, base+"quote", "application/json", q); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no key: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, c, base+"quote", "application/json", q, "X-API-Key", "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, c, base+"trade", "application/json", `{}`, "Authorization", "Bearer feed-key"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("type not allowed: %d %s", resp.StatusCode, body)
	}
	for i := 0; i < 2; i++ { // the burst; the 403 above was refused before the bucket
		if resp, body := post(t, c, base+"quote", "application/json", q, "Authorization", "Bearer feed-key", "Sluice-Priority", "critical"); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("request %d of the burst: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := post(t, c, base+"quote", "application/json", q, "Authorization", "Bearer feed-key")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" ||
		!strings.HasPrefix(resp.Header.Get("RateLimit-Policy"), `"client";q=2;w=`) || resp.Header.Get("RateLimit") == "" {
		t.Fatalf("past the burst: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, body := post(t, c, base+"trade", "application/json", `{"symbol":"MSFT","price":1,"size":1,"venue":"XNAS"}`, "X-API-Key", "big-key"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("unlimited key: %d %s", resp.StatusCode, body)
	}
}
