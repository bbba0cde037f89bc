package h2edge

import (
	"bytes"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// echoFast is a FastHandler that claims POST /fast: it refuses a request
// with a "refuse" field in Begin (403), and answers the others from
// another goroutine after End with the body it got (or 413 and a drain).
type echoFast struct {
	mu      sync.Mutex
	ended   []string
	aborted int
	hold    chan struct{} // answers wait for it when set
}

type echoExchange struct {
	f   *echoFast
	hdr http.Header
}

func (f *echoFast) Claim(method, path string) FastExchange {
	if method != http.MethodPost || path != "/fast" {
		return nil
	}
	return &echoExchange{f: f, hdr: make(http.Header)}
}

func (x *echoExchange) Header() http.Header { return x.hdr }

func (x *echoExchange) Begin(fs *FastStream) (int64, bool) {
	if x.hdr.Get("Adapter") != "" {
		return 0, false
	}
	if x.hdr.Get("Refuse") != "" {
		fs.Respond(http.StatusForbidden, nil, []byte("refused"))
	}
	return 64, true
}

func (x *echoExchange) End(fs *FastStream, body []byte, err error) {
	if errors.Is(err, ErrBodyTooLarge) {
		fs.DrainBody(1 << 20)
		fs.Respond(http.StatusRequestEntityTooLarge, nil, []byte("too large"))
		return
	}
	x.f.mu.Lock()
	x.f.ended = append(x.f.ended, string(body))
	x.f.mu.Unlock()
	answer := append([]byte("got "), body...)
	go func() {
		if x.f.hold != nil {
			<-x.f.hold
		}
		fs.Respond(http.StatusAccepted, http.Header{"Content-Type": {"text/plain"}}, answer)
	}()
}

func (x *echoExchange) Abort(*FastStream) {
	x.f.mu.Lock()
	x.f.aborted++
	x.f.mu.Unlock()
}

func fastBlock(enc *hpack.Encoder, b *bytes.Buffer, extra ...string) []byte {
	b.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/fast"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return b.Bytes()
}

// answers reads frames until n streams ended, and returns each stream's
// status and body.
func answers(t *testing.T, fr *http2.Framer, n int) map[uint32]string {
	t.Helper()
	got := map[uint32]string{}
	done := map[uint32]bool{}
	end := func(id uint32) { done[id] = true }
	for len(done) < n {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d answers: %v", len(done), err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			for _, hf := range f.PseudoFields() {
				got[f.StreamID] += hf.Value + " "
			}
			if f.StreamEnded() {
				end(f.StreamID)
			}
		case *http2.DataFrame:
			got[f.StreamID] += string(f.Data())
			if f.StreamEnded() {
				end(f.StreamID)
			}
		case *http2.RSTStreamFrame:
			if !done[f.StreamID] {
				got[f.StreamID] += "RST " + f.ErrCode.String()
			}
			end(f.StreamID)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
	return got
}

// TestFastPath: claimed requests are answered without a handler
// goroutine, a refusal in Begin before the body, a body past maxBody 413
// and drained without a reset, and a request the exchange declines goes
// to the adapter.
func TestFastPath(t *testing.T) {
	fh := &echoFast{}
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("adapter"))
	}), false, Options{Fast: fh})
	c, fr := rawConn(t, port)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: fastBlock(enc, &b), EndHeaders: true})
	_ = fr.WriteData(1, false, []byte("hel"))
	_ = fr.WriteData(1, true, []byte("lo"))
	// Refused in Begin: its DATA is dropped, or, once the answer is out,
	// reset (RST_STREAM NO_ERROR), which the answers ignore.
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: fastBlock(enc, &b, "refuse", "1"), EndHeaders: true})
	_ = fr.WriteData(3, true, []byte("never read"))
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: fastBlock(enc, &b), EndHeaders: true})
	_ = fr.WriteData(5, false, bytes.Repeat([]byte("x"), 60))
	_ = fr.WriteData(5, false, bytes.Repeat([]byte("x"), 60))
	_ = fr.WriteData(5, true, bytes.Repeat([]byte("x"), 60))
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: fastBlock(enc, &b, "adapter", "1"), EndStream: true, EndHeaders: true})
	got := answers(t, fr, 4)
	want := map[uint32]string{1: "202 got hello", 3: "403 refused", 5: "413 too large", 7: "200 adapter"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("stream %d: got %q, want %q", id, got[id], w)
		}
	}
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if len(fh.ended) != 1 || fh.ended[0] != "hello" {
		t.Errorf("End saw %q, want one body, hello", fh.ended)
	}
}

// TestFastPathWindow: an answer larger than the client's stream window
// waits for its WINDOW_UPDATE, and a stream reset before its body ended
// is aborted.
func TestFastPathWindow(t *testing.T) {
	fh := &echoFast{}
	port := serveTest(t, http.NotFoundHandler(), false, Options{Fast: fh})
	c, fr := rawConn(t, port)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 5})
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: fastBlock(enc, &b), EndHeaders: true})
	_ = fr.WriteData(1, true, []byte("0123456789"))
	var data []byte
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		d, ok := f.(*http2.DataFrame)
		if !ok {
			continue
		}
		data = append(data, d.Data()...)
		if d.StreamEnded() {
			break
		}
		if len(data) == 5 {
			_ = fr.WriteWindowUpdate(1, 100)
		}
	}
	if string(data) != "got 0123456789" {
		t.Fatalf("answer %q", data)
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: fastBlock(enc, &b), EndHeaders: true})
	_ = fr.WriteData(3, false, []byte("part"))
	_ = fr.WriteRSTStream(3, http2.ErrCodeCancel)
	deadline := time.Now().Add(10 * time.Second)
	for {
		fh.mu.Lock()
		n := fh.aborted
		fh.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reset stream was not aborted")
		}
		time.Sleep(5 * time.Millisecond) // polling
	}
}

// TestFastPathNoGoroutinePerStream: 100 requests held unanswered on one
// connection take no goroutine each.
func TestFastPathNoGoroutinePerStream(t *testing.T) {
	fh := &echoFast{hold: make(chan struct{})}
	port := serveTest(t, http.NotFoundHandler(), false, Options{Fast: fh})
	c, fr := rawConn(t, port)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	// One request first: the connection's answer writer starts with it.
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: fastBlock(enc, &b), EndHeaders: true})
	_ = fr.WriteData(1, true, []byte("a"))
	checkEnded := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			fh.mu.Lock()
			got := len(fh.ended)
			fh.mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d requests ended, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond) // polling
		}
	}
	checkEnded(1)
	// The test's exchange answers from a goroutine of its own (held):
	// those are the test's, one per request, counted out.
	before := runtime.NumGoroutine()
	for i := range 100 {
		id := uint32(3 + 2*i)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: fastBlock(enc, &b), EndHeaders: true})
		_ = fr.WriteData(id, true, []byte("a"))
	}
	checkEnded(101)
	if d := runtime.NumGoroutine() - before - 100; d > 2 {
		t.Errorf("%d goroutines more than the exchanges' own for 100 streams", d)
	}
	close(fh.hold)
	answers(t, fr, 101)
}

// TestFastPathRecycle: FastStreams are reused (streamPool) without an
// answer reaching the wrong stream, while streams are reset before and
// after their body ended.
func TestFastPathRecycle(t *testing.T) {
	fh := &echoFast{}
	port := serveTest(t, http.NotFoundHandler(), false, Options{Fast: fh, MaxEarlyResets: -1})
	c, fr := rawConn(t, port)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	want := map[uint32]string{}
	id := uint32(1)
	for round := range 40 {
		var ids []uint32
		for i := range 25 {
			body := []byte(strconv.Itoa(int(id)))
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: fastBlock(enc, &b), EndHeaders: true})
			switch (round*25 + i) % 7 {
			case 0: // reset before its body ended: aborted
				_ = fr.WriteData(id, false, body)
				_ = fr.WriteRSTStream(id, http2.ErrCodeCancel)
			case 1: // reset once ended: its answer is dropped, or comes before the reset is read
				_ = fr.WriteData(id, true, body)
				_ = fr.WriteRSTStream(id, http2.ErrCodeCancel)
				want[id] = "202 got " + string(body)
			default:
				_ = fr.WriteData(id, true, body)
				want[id] = "202 got " + string(body)
				ids = append(ids, id)
			}
			id += 2
		}
		got := map[uint32]string{}
		for len(ids) > 0 {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				got[f.StreamID] = f.PseudoValue("status") + " "
			case *http2.DataFrame:
				got[f.StreamID] += string(f.Data())
				if f.StreamEnded() {
					if got[f.StreamID] != want[f.StreamID] {
						t.Fatalf("stream %d: got %q, want %q", f.StreamID, got[f.StreamID], want[f.StreamID])
					}
					ids = slices.DeleteFunc(ids, func(x uint32) bool { return x == f.StreamID })
				}
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v", f.ErrCode)
			}
		}
	}
}
