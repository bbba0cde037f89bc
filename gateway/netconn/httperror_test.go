package netconn

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestProblemAnswer: net/http's fixed plain-text answers become problems;
// anything else, handlers' answers included, is left alone.
func TestProblemAnswer(t *testing.T) {
	f := func(in string, wantCode int, wantDetail string) {
		t.Helper()
		b, code := problemAnswer([]byte(in), 1024)
		if code != wantCode {
			t.Fatalf("%.60q: code %d, want %d", in, code, wantCode)
		}
		if wantCode == 0 {
			if b != nil {
				t.Fatalf("%.60q: rewritten as %q", in, b)
			}
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(b))), nil)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		body, _ := io.ReadAll(resp.Body)
		var p struct {
			Type, Title, Detail string
			Status              int
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if resp.StatusCode != wantCode || p.Status != wantCode || p.Detail != wantDetail || p.Title != http.StatusText(wantCode) ||
			resp.Header.Get("Content-Type") != "application/problem+json" || !resp.Close {
			t.Fatalf("%.60q: got %d %v %+v", in, resp.StatusCode, resp.Header, p)
		}
	}
	const h = plainErrorHeaders
	f("HTTP/1.1 431 Request Header Fields Too Large"+h+"431 Request Header Fields Too Large", 431,
		"the request's header block is larger than 1024 bytes: send less in headers (cookies, tokens) or the data in the body")
	f("HTTP/1.1 400 Bad Request"+h+"400 Bad Request", 400, "the request is not well-formed HTTP/1.1")
	f("HTTP/1.1 400 Bad Request: missing required Host header"+h+"400 Bad Request: missing required Host header", 400,
		"missing required Host header")
	f("HTTP/1.1 501 Not Implemented"+h+"Unsupported transfer encoding", 501, "Unsupported transfer encoding")
	f("HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version"+h+"505 HTTP Version Not Supported: unsupported protocol version", 505,
		"unsupported protocol version")
	// A handler's plain-text answer has a Date (and the headers in another
	// order); a success is never touched.
	f("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Sun, 06 Dec 2026 13:00:00 GMT\r\n\r\nno", 0, "")
	f("HTTP/1.1 200 OK"+h+"fine", 0, "")
	f("HTTP/1.1 431", 0, "")
	f("\x00\x00\x08\x06\x00\x00\x00\x00\x00PINGPING", 0, "")
}

// TestProblemErrorsOverTheWire: a header block past MaxHeaderBytes gets a
// problem+json 431 from a server listening through Listen, counted once;
// good requests on other connections are answered as before.
func TestProblemErrorsOverTheWire(t *testing.T) {
	var counted atomic.Int64
	ln, err := Listen("127.0.0.1:0", Options{ReadBuffer: DefaultReadBuffer, CoalesceWrites: true,
		ProblemErrors: true, MaxHeaderBytes: 1 << 10, OnHTTPError: func(status int) {
			if status == http.StatusRequestHeaderFieldsTooLarge {
				counted.Add(1)
			}
		}}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{MaxHeaderBytes: 1 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "plain from a handler", http.StatusBadRequest)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = ln.Drain(ctx)
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("y", 8<<10))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), `"status":431`) {
		t.Fatalf("got %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if n := counted.Load(); n != 1 {
		t.Errorf("431 counted %d times, want 1", n)
	}
	// A handler's own text/plain error stays as it is.
	r2, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusBadRequest || !strings.HasPrefix(r2.Header.Get("Content-Type"), "text/plain") || string(b2) != "plain from a handler\n" {
		t.Errorf("handler's answer changed: %d %q %q", r2.StatusCode, r2.Header.Get("Content-Type"), b2)
	}
}
