package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// TestRefusalReachesClients: a body past --max-body is answered 413
// problem+json that real clients show (and one for an unknown type 404), over h2c and HTTP/1.1, whether
// Content-Length declares it (413 before reading) or not (413 once the
// bound is passed). Over HTTP/2 the gateway used to end the stream with
// RST_STREAM(NO_ERROR) right after the answer, and curl 7.88 then exited
// 92 without showing it; now it drains the rest of the body (within
// bounds) so that the stream ends normally. Past the drain bound the
// stream is reset as before.
func TestRefusalReachesClients(t *testing.T) {
	const max = 1 << 20
	e := newTestEnv(t, "h2c", nil, func(o *Options) { o.MaxBodyBytes = max })
	body := bytes.Repeat([]byte("x"), max+max/2) // past the bound, within the drain
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	url := e.base + "/v1/events/quote"
	want413 := func(t *testing.T, who string, status int, problemBody []byte) {
		t.Helper()
		if status != http.StatusRequestEntityTooLarge || !bytes.Contains(problemBody, []byte(`"status":413`)) {
			t.Errorf("%s: status %d body %q, want 413 problem+json", who, status, problemBody)
		}
	}
	want404 := func(t *testing.T, who string, status int, problemBody []byte) {
		t.Helper()
		if status != http.StatusNotFound || !bytes.Contains(problemBody, []byte(`"status":404`)) {
			t.Errorf("%s: status %d body %q, want 404 problem+json", who, status, problemBody)
		}
	}
	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("no curl")
		}
		for _, c := range []struct {
			name string
			args []string
		}{
			{"h2c declared", []string{"--http2-prior-knowledge", "--data-binary", "@" + file}},
			{"h2c streamed", []string{"--http2-prior-knowledge", "-T", "-", "-X", "POST"}},
			{"h1 declared", []string{"--http1.1", "--data-binary", "@" + file}},
			{"h1 streamed", []string{"--http1.1", "-T", "-", "-X", "POST"}},
			{"h2c unknown type", []string{"--http2-prior-knowledge", "--data-binary", "@" + file}},
		} {
			args := append([]string{"-sS", "-H", "Content-Type: application/x-ndjson", "-o", "-", "-w", "\n%{http_code}"}, c.args...)
			u, want := url, want413
			if strings.Contains(c.name, "unknown") {
				u, want = e.base+"/v1/events/nope", want404
			}
			cmd := exec.Command("curl", append(args, u)...)
			cmd.Stdin = bytes.NewReader(body)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("curl %s: %v %s (out %q)", c.name, err, stderr.Bytes(), out)
				continue
			}
			i := bytes.LastIndexByte(out, '\n')
			status, _ := strconv.Atoi(string(out[i+1:]))
			want(t, "curl "+c.name, status, out[:i])
		}
	})
	t.Run("nghttp", func(t *testing.T) {
		if _, err := exec.LookPath("nghttp"); err != nil {
			t.Skip("no nghttp")
		}
		run := func(file string) string {
			out, err := exec.Command("nghttp", "-v", "-d", file, "-H", "content-type: application/x-ndjson", url).CombinedOutput()
			if err != nil {
				t.Fatalf("nghttp: %v %s", err, out)
			}
			return string(out)
		}
		out := run(file)
		if !strings.Contains(out, ":status: 413") || !strings.Contains(out, `"status":413`) || strings.Contains(out, "recv RST_STREAM") {
			t.Errorf("nghttp: want 413 and the problem without RST_STREAM, got\n%s", lastLines(out, 12))
		}
		// Past the drain bound the stream is reset after the answer.
		huge := filepath.Join(t.TempDir(), "huge")
		if err := os.WriteFile(huge, bytes.Repeat([]byte("x"), 2*max+1), 0o600); err != nil {
			t.Fatal(err)
		}
		out = run(huge)
		if !strings.Contains(out, ":status: 413") || !strings.Contains(out, "recv RST_STREAM") {
			t.Errorf("nghttp past the drain bound: want 413 then RST_STREAM, got\n%s", lastLines(out, 12))
		}
	})
	t.Run("go", func(t *testing.T) {
		for _, mode := range []string{"h1", "h2c"} {
			client := newTestClient(t, mode, nil)
			for _, declared := range []bool{true, false} {
				var r io.Reader = bytes.NewReader(body)
				if !declared {
					r = io.MultiReader(r) // hides the length: chunked / no content-length
				}
				req, _ := http.NewRequest(http.MethodPost, url, r)
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("go %s declared=%v: %v", mode, declared, err)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Errorf("go %s declared=%v: reading the answer: %v", mode, declared, err)
				}
				want413(t, "go "+mode, resp.StatusCode, b)
				if mode == "h1" && !resp.Close {
					t.Errorf("go h1 declared=%v: the connection stays open with the body unread", declared)
				}
			}
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
