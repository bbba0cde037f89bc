package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestBodyPreallocBounded: a declared Content-Length does not allocate the
// whole body before its bytes arrive.
func TestBodyPreallocBounded(t *testing.T) {
	br := bodyReader{max: 4 << 20, timeout: time.Second, minRate: 64 << 10}
	r, _ := http.NewRequest(http.MethodPost, "/", io.NopCloser(bytes.NewReader([]byte("[1]"))))
	r.ContentLength = 4 << 20
	buf, derr := br.read(nil, r, nil, time.Now())
	// The body is short of its declared length: net/http would fail it;
	// this reader only sees EOF. What matters is the allocation.
	if derr != nil {
		t.Fatalf("read: %v", derr)
	}
	if cap(buf) > bodyPrealloc {
		t.Fatalf("allocated %d bytes for a 3-byte body declaring 4 MiB, want at most %d", cap(buf), bodyPrealloc)
	}
}

// TestBodyTimeout: a body that stalls is answered 408 within the body
// timeout over both protocols, and counted as 408.
func TestBodyTimeout(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.BodyTimeout = 300 * time.Millisecond; o.ReadHeaderTimeout = 200 * time.Millisecond })
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/events/quote", pr)
		req.ContentLength = 1000
		req.Header.Set("Content-Type", "application/json")
		go func() { _, _ = pw.Write([]byte(`{"symbol":`)) }()
		start := time.Now()
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatalf("stalled request: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status %d %s, want 408", resp.StatusCode, body)
		}
		t.Logf("408 after %v: %s", time.Since(start), body)
		if got := e.counter(`sluice_gateway_requests_total{status="408"}`); got != 1 {
			t.Errorf("408 counted %d times, want 1", got)
		}
	})
}

// TestResetCountedAsClientClosed: a client that gives up on its upload is
// counted as 499 (client closed), not as a malformed request.
func TestResetCountedAsClientClosed(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/events/quote", pr)
		req.ContentLength = 1000
		req.Header.Set("Content-Type", "application/json")
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := e.client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		_, _ = pw.Write([]byte(`{"symbol":`))
		time.Sleep(50 * time.Millisecond) // the request reaches the handler
		cancel()
		pw.CloseWithError(context.Canceled)
		<-done
		opstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if e.counter(`sluice_gateway_requests_total{status="499"}`) != 1 {
				return errStr("499 not counted")
			}
			return nil
		})
		if n := e.counter(`sluice_gateway_requests_total{status="400"}`); n != 0 {
			t.Errorf("a reset upload was counted as 400 (%d)", n)
		}
	})
}

type errStr string

func (e errStr) Error() string { return string(e) }
