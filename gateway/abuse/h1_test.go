package abuse

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/gateway"
)

// TestSlowloris: connections that send a header byte a second are closed
// at the header timeout, and good requests are answered meanwhile.
func TestSlowloris(t *testing.T) {
	e := newEnv(t, func(o *gateway.Options) { o.ReadHeaderTimeout = 2 * time.Second })
	conns := make([]net.Conn, 0, slowlorisConns)
	for range slowlorisConns {
		c := e.dial()
		if _, err := io.WriteString(c, "POST /v1/events/quote HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // a byte a second on every connection
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, c := range conns {
				_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = c.Write([]byte("a"))
			}
		}
	})
	worst := e.mustServe()
	closed := make(chan time.Duration, len(conns))
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if err != nil && !closedByPeer(err) {
				closed <- -1
				return
			}
			closed <- time.Since(start)
		})
	}
	var last time.Duration
	for range conns {
		d := <-closed
		if d < 0 {
			t.Fatal("a slowloris connection was still open after 20 s")
		}
		last = max(last, d)
	}
	close(stop)
	wg.Wait()
	t.Logf("slowloris: %d connections all closed %v after the attack began (header timeout 2 s); a good request took %v meanwhile",
		len(conns), last.Round(10*time.Millisecond), worst)
	e.recovered()
}

// TestHugeHeaders: 100 MB of HTTP/1.1 headers get 431 after at most a few
// megabytes, as application/problem+json, and the connection is closed.
func TestHugeHeaders(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answer <- nil
			return
		}
		answer <- resp
	}()
	_, _ = io.WriteString(c, "GET /v1/types HTTP/1.1\r\nHost: x\r\nX-Big: ")
	chunk := []byte(strings.Repeat("a", 64<<10))
	sent := 0
	var resp *http.Response
loop:
	for sent < 100<<20 {
		select {
		case resp = <-answer:
			break loop
		default:
		}
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(chunk); err != nil {
			break
		}
		sent += len(chunk)
	}
	if resp == nil {
		select {
		case resp = <-answer:
		case <-time.After(10 * time.Second):
		}
	}
	if resp == nil {
		t.Fatalf("no answer after %d MB of headers", sent>>20)
	}
	body, _ := io.ReadAll(resp.Body)
	t.Logf("100 MB of headers: %d %q after %d KB sent: %.80q", resp.StatusCode, resp.Header.Get("Content-Type"), sent>>10, body)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
	if sent >= 100<<20 {
		t.Errorf("all 100 MB went in before the answer")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("431 comes as %q, want application/problem+json", ct)
	}
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != http.StatusRequestHeaderFieldsTooLarge || p.Detail == "" {
		t.Errorf("431 body %q: want a problem with status 431 and a detail (%v)", body, err)
	}
	if got := e.counter(`sluice_gateway_requests_total{status="431"}`); got != 1 {
		t.Errorf("431 counted %v times, want 1", got)
	}
	e.recovered()
}

// TestStalledBody: a request whose body stops mid-way is answered 408, or
// its stream or connection closed, within the body timeout, over
// HTTP/1.1 and HTTP/2.
func TestStalledBody(t *testing.T) {
	// The server's ReadTimeout (header timeout + body timeout) counts
	// from the start of the request, so the answer comes within both.
	const timeout = 2 * time.Second
	e := newEnv(t, func(o *gateway.Options) { o.ReadHeaderTimeout, o.BodyTimeout = time.Second, time.Second })
	for _, proto := range []string{"h1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			start := time.Now()
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() { _, _ = io.WriteString(pw, `[{"symbol":"AAPL","bid":189.5,`) }() // then nothing
			req, _ := http.NewRequest(http.MethodPost, "http://"+e.addr+"/v1/events/quote", pr)
			req.ContentLength = 1000
			req.Header.Set("Content-Type", "application/json")
			c := e.h1
			if proto == "h2c" {
				c = e.h2c
			}
			resp, err := c.Do(req)
			took := time.Since(start)
			outcome := fmt.Sprint(err)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				outcome = fmt.Sprintf("%d %.80s", resp.StatusCode, b)
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Errorf("stalled body answered %s, want 408", outcome)
				}
			}
			t.Logf("stalled body (%s): %s after %v", proto, outcome, took.Round(10*time.Millisecond))
			if took > timeout+3*time.Second {
				t.Errorf("answered %v after the start, header and body timeouts are %v", took, timeout)
			}
		})
	}
	e.recovered()
}
