package h2edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// TestEchoBodies: request bodies larger than every window arrive whole and
// are echoed, on many streams of one connection at once.
func TestEchoBodies(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.Copy(w, r.Body)
	}), false, Options{InitialWindowSize: 65535, ConnWindowSize: 65535})
	c := h2cClient()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + i)}, 300<<10+i)
			resp, err := c.Post(fmt.Sprintf("http://127.0.0.1:%d/echo", port), "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(got, body) || resp.ProtoMajor != 2 {
				t.Errorf("stream %d: %d bytes back (want %d), proto %s, err %v", i, len(got), len(body), resp.Proto, err)
			}
		}()
	}
	wg.Wait()
}

// TestStreamingFlush: each Flush reaches the client before the handler
// goes on.
func TestStreamingFlush(t *testing.T) {
	next := make(chan struct{})
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			<-next
		}
	}), false, Options{})
	resp, err := h2cClient().Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	for i := range 3 {
		n, err := resp.Body.Read(buf)
		if err != nil || string(buf[:n]) != fmt.Sprintf("data: %d\n\n", i) {
			t.Fatalf("event %d: %q, %v", i, buf[:n], err)
		}
		next <- struct{}{}
	}
}

// TestShutdownFinishesStreams: GOAWAY lets the stream in flight finish.
func TestShutdownFinishesStreams(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := New(Options{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	})})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err == nil {
			s.ServeConn(context.Background(), c, false)
		}
		close(served)
	}()
	got := make(chan string, 1)
	go func() {
		resp, err := h2cClient().Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	s.StartShutdown()
	close(release)
	if g := <-got; g != "done" {
		t.Fatalf("answer after GOAWAY: %q", g)
	}
	<-served
	if s.Conns() != 0 {
		t.Fatalf("%d connections still served", s.Conns())
	}
}

// rawConn opens a connection, sends the preface and empty SETTINGS, and
// returns a framer over it.
func rawConn(t testing.TB, port int) (net.Conn, *http2.Framer) {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, _ = io.WriteString(c, clientPreface)
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_ = fr.WriteSettings()
	return c, fr
}

func headerBlock(path string) []byte {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		_ = e.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return b.Bytes()
}

// readGoAway reads frames until a GOAWAY and returns its code.
func readGoAway(t testing.TB, c net.Conn, fr *http2.Framer) http2.ErrCode {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g.ErrCode
		}
	}
}

// TestRapidReset: streams reset before their answer, past the bound, end
// the connection with ENHANCE_YOUR_CALM.
func TestRapidReset(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-block:
		}
	}), false, Options{MaxEarlyResets: 50})
	c, fr := rawConn(t, port)
	for id := uint32(1); id < 400; id += 2 {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headerBlock("/"), EndStream: true, EndHeaders: true})
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
	}
	if code := readGoAway(t, c, fr); code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}
}

// TestPingFlood: PINGs past the limit end the connection with
// ENHANCE_YOUR_CALM; those below it are answered.
func TestPingFlood(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(specHandler), false, Options{ControlFrameLimit: 20})
	c, fr := rawConn(t, port)
	for i := range 100 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break
		}
	}
	if code := readGoAway(t, c, fr); code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}
}

// TestContinuationFlood: empty CONTINUATION frames without end close the
// connection once they pass the bound.
func TestContinuationFlood(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(specHandler), false, Options{MaxHeaderListSize: 1 << 10})
	c, fr := rawConn(t, port)
	go func() {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/")})
		for range 100000 {
			if fr.WriteContinuation(1, false, nil) != nil {
				return
			}
		}
	}()
	if code := readGoAway(t, c, fr); code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}
}

// TestIdleTimeout: a connection without streams is closed with GOAWAY.
func TestIdleTimeout(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(specHandler), false, Options{IdleTimeout: 50 * time.Millisecond})
	c, fr := rawConn(t, port)
	if code := readGoAway(t, c, fr); code != http2.ErrCodeNo {
		t.Fatalf("GOAWAY %v, want NO_ERROR", code)
	}
}

// FuzzFrames: arbitrary bytes after a valid preface and SETTINGS neither
// panic the server nor leave goroutines behind.
func FuzzFrames(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/"), EndHeaders: true})
	_ = fr.WriteData(1, true, []byte("body"))
	_ = fr.WritePing(false, [8]byte{})
	_ = fr.WriteWindowUpdate(0, 1)
	_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
	f.Add(seed.Bytes())
	// The fast path: a claimed POST, another refused in Begin, a third
	// over maxBody, one reset mid-body.
	seed.Reset()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: fastBlock(enc, &hb), EndHeaders: true})
	_ = fr.WriteData(1, true, []byte("body"))
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: fastBlock(enc, &hb, "refuse", "1"), EndHeaders: true})
	_ = fr.WriteData(3, true, []byte("body"))
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: fastBlock(enc, &hb), EndHeaders: true})
	_ = fr.WriteData(5, false, bytes.Repeat([]byte("x"), 100))
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: fastBlock(enc, &hb), EndHeaders: true})
	_ = fr.WriteData(7, false, []byte("part"))
	_ = fr.WriteRSTStream(7, http2.ErrCodeCancel)
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 0, 1})
	// The handler reads the body and answers in flushed pieces, so that
	// windows, SETTINGS and resets from the fuzzer meet writes under way.
	var panics atomic.Int64 // panics the guard turned into closed connections
	s := New(Options{ReadHeaderTimeout: time.Second, InitialWindowSize: 1 << 10, ConnWindowSize: 1 << 16,
		Fast: &echoFast{},
		OnError: func(name string) {
			if name == "conn_INTERNAL_ERROR_panic" {
				panics.Add(1)
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			for range 3 {
				_, _ = w.Write(bytes.Repeat([]byte("x"), 700))
				w.(http.Flusher).Flush()
			}
		})})
	before := runtime.NumGoroutine()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { s.ServeConn(context.Background(), a, false); close(done) }()
		go func() { _, _ = io.Copy(io.Discard, b) }()
		var in bytes.Buffer
		in.WriteString(clientPreface)
		_ = http2.NewFramer(&in, nil).WriteSettings()
		in.Write(data)
		_, _ = b.Write(in.Bytes())
		_ = b.Close()
		<-done
		if n := panics.Load(); n > 0 {
			t.Fatalf("%d panics in the frame loop or an answer's finish", n)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		f.Fatalf("%d goroutines after fuzzing, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestTLSALPN: a Go client over TLS gets HTTP/2.
func TestTLSALPN(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(specHandler), true, Options{})
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	resp, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.HasPrefix(string(b), "hello") {
		t.Fatalf("%s %q", resp.Proto, b)
	}
}

// TestPartialFrameDoesNotHoldAnswers: an answer is sent while the loop
// waits for the rest of a frame that came in part with the request.
func TestPartialFrameDoesNotHoldAnswers(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(specHandler), false, Options{})
	c, fr := rawConn(t, port)
	var b bytes.Buffer
	w := http2.NewFramer(&b, nil)
	_ = w.WriteSettingsAck()
	_ = w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/"), EndStream: true, EndHeaders: true})
	_ = w.WritePing(false, [8]byte{1})
	if _, err := c.Write(b.Bytes()[:b.Len()-10]); err != nil { // the PING's last byte of header and its payload withheld
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no answer while a frame is incomplete: %v", err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			return
		}
	}
}

// TestUnreadBodiesGiveBackTheWindow: bodies a handler never reads are
// given back to the connection's window when the handler returns, so the
// connection does not run out of it.
func TestUnreadBodiesGiveBackTheWindow(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ignored your body")
	}), false, Options{ConnWindowSize: 1 << 20})
	c, fr := rawConn(t, port)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	body := make([]byte, 16<<10)
	var b bytes.Buffer
	w := http2.NewFramer(&b, nil)
	for i := range 200 { // 3.2 MB: three times the connection's window
		id := uint32(2*i + 1)
		b.Reset()
		_ = w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headerBlock("/"), EndHeaders: true})
		_ = w.WriteData(id, true, body)
		if _, err := c.Write(b.Bytes()); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		for answered := false; !answered; {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				t.Fatalf("request %d: GOAWAY %v", i, f.ErrCode)
			case *http2.DataFrame:
				answered = f.StreamID == id && f.StreamEnded()
			}
		}
	}
}

// TestEndWithNegativeWindow: a stream whose window a SETTINGS frame made
// negative still ends (an empty DATA frame takes no window).
func TestEndWithNegativeWindow(t *testing.T) {
	flushed := make(chan struct{})
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "abc")
		w.(http.Flusher).Flush()
		<-flushed
	}), false, Options{})
	c, fr := rawConn(t, port)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 3})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/"), EndStream: true, EndHeaders: true})
	acks := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if f.StreamEnded() {
				return
			}
			// The window is spent; shrink it below zero, then let the
			// handler return once the server took that in.
			_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		case *http2.SettingsFrame:
			if f.IsAck() {
				if acks++; acks == 3 { // the empty SETTINGS, window 3, window 0
					close(flushed)
				}
			}
		}
	}
}

// TestReadHeaderTimeout: a frame begun and never finished ends the
// connection after ReadHeaderTimeout.
func TestReadHeaderTimeout(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(specHandler), false, Options{ReadHeaderTimeout: 100 * time.Millisecond})
	c, fr := rawConn(t, port)
	if _, err := c.Write([]byte{0, 0, 8, 6, 0}); err != nil { // half a PING header
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := fr.ReadFrame(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the connection outlived its header timeout")
			}
			return // closed by the server
		}
	}
}

// TestWriteTimeoutResetsStalledStream: an answer the peer never opens its
// window for is reset at WriteTimeout, and its handler's write fails.
func TestWriteTimeoutResetsStalledStream(t *testing.T) {
	wrote := make(chan error, 1)
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		_, err := w.Write(make([]byte, 32<<10))
		wrote <- err
	}), false, Options{WriteTimeout: 200 * time.Millisecond})
	c, fr := rawConn(t, port)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/"), EndStream: true, EndHeaders: true})
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no RST_STREAM: %v", err)
		}
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == 1 {
			break
		}
	}
	if err := <-wrote; err == nil {
		t.Fatal("the handler's write into a reset stream succeeded")
	}
}
