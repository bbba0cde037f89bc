package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFastSlowBodyPastRequestTimeout: on the fast edge, requests with
// Prefer: return=representation whose bodies arrive after --request-timeout
// has passed since their headers each get one 504. Found in review: the
// results' deadline fired at once and answered and freed the pooled
// exchange while publishBody still ran on it; the batch's later batchDone
// then ran on a freed exchange (a nil dereference that closed the
// connection, or a crash off the connection's goroutine, or another
// request's stream answered).
func TestFastSlowBodyPastRequestTimeout(t *testing.T) {
	var logs syncBuffer
	e := newTestEnv(t, "h2c", nil, func(o *Options) {
		o.HTTP2Server = HTTP2Fast
		o.RequestTimeout = 50 * time.Millisecond
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	statuses := map[int]int{}
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go func() {
				time.Sleep(120 * time.Millisecond) // headers first, the body past the deadline
				pw.Write([]byte(quoteJSONBody("AAPL")))
				pw.Close()
			}()
			req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/events/quote", pr)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Prefer", "return=representation")
			resp, err := e.client.Do(req)
			if err != nil {
				mu.Lock()
				failed++
				if failed == 1 {
					t.Logf("first client error: %v", err)
				}
				mu.Unlock()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	time.Sleep(300 * time.Millisecond) // a late batchDone on a freed exchange would log its panic by now
	if failed > 0 || strings.Contains(logs.String(), "panic") {
		i := strings.Index(logs.String(), "panic")
		t.Fatalf("%d of 30 requests lost their connection; log: %.3000s", failed, logs.String()[max(i-100, 0):])
	}
	if statuses[http.StatusGatewayTimeout] != 30 {
		t.Errorf("statuses %v, want 30 × 504", statuses)
	}
}
