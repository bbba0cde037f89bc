package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// newH2CServer starts a Go h2c server running h, configured by conf.
func newH2CServer(t *testing.T, conf *http.HTTP2Config, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Config.HTTP2 = conf
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestH2CountsAndLatency checks that every answer the server gave is
// counted once under its status, that good and shed answers get their
// latency recorded, and that latency includes the server's delay.
func TestH2CountsAndLatency(t *testing.T) {
	var mu sync.Mutex
	served := map[int]uint64{}
	var n atomic.Int64
	srv := newH2CServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(2 * time.Millisecond)
		code := http.StatusAccepted
		switch i := n.Add(1); {
		case i%5 == 0:
			code = http.StatusServiceUnavailable
		case i%7 == 0:
			code = http.StatusBadRequest
		}
		mu.Lock()
		served[code]++
		mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"accepted":1,"ids":["x"]}`)
	})
	res, err := Run(context.Background(), Config{Target: srv.URL, Client: ClientOptions{Conns: 2, Streams: 4},
		Payloads: testPayloads(t, PayloadOptions{Batch: 3, Format: FormatNDJSON}), Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Errors != 0 || len(res.Status) != len(served) {
		t.Fatalf("errors %d %v, status %v, served %v", res.Errors, res.ErrorKinds, res.Status, served)
	}
	for code, k := range served {
		if res.Status[code] != k {
			t.Fatalf("status %v, served %v", res.Status, served)
		}
	}
	good, shed := served[202], served[503]
	if good == 0 || shed == 0 || res.Answered != good || res.Events != 3*good ||
		res.Latency.Count != int64(good) || res.Shed.Count != int64(shed) {
		t.Fatalf("answered %d events %d latency %d shed %d, served %v", res.Answered, res.Events,
			res.Latency.Count, res.Shed.Count, served)
	}
	if res.Latency.P50 < 2 {
		t.Fatalf("p50 %.2f ms below the server's 2 ms", res.Latency.P50)
	}
}

// TestH2StreamsHonoured checks that each connection carries Streams
// requests at once, and no more than the server allows.
func TestH2StreamsHonoured(t *testing.T) {
	cases := []struct {
		name              string
		serverMax, stream int
		want              int
	}{
		{"client bound", 100, 5, 5},
		{"server bound", 2, 5, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			inflight, peak := map[string]int{}, map[string]int{}
			srv := newH2CServer(t, &http.HTTP2Config{MaxConcurrentStreams: c.serverMax},
				func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					mu.Lock()
					inflight[r.RemoteAddr]++
					peak[r.RemoteAddr] = max(peak[r.RemoteAddr], inflight[r.RemoteAddr])
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
					mu.Lock()
					inflight[r.RemoteAddr]--
					mu.Unlock()
					w.WriteHeader(http.StatusAccepted)
				})
			res, err := Run(context.Background(), Config{Target: srv.URL, Client: ClientOptions{Conns: 3, Streams: c.stream},
				Payloads: testPayloads(t, PayloadOptions{}), Duration: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.Retried != 0 || res.Answered == 0 {
				t.Fatalf("errors %d %v, retried %d, answered %d", res.Errors, res.ErrorKinds, res.Retried, res.Answered)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(peak) != 3 {
				t.Fatalf("%d connections, want 3", len(peak))
			}
			for addr, p := range peak {
				if p != c.want {
					t.Fatalf("connection %s carried up to %d requests at once, want %d", addr, p, c.want)
				}
			}
		})
	}
}

// TestH2FlowControl sends bodies far larger than the server's receive
// windows and gets answers larger than the generator's: every body must
// arrive whole and every answer be read to its end.
func TestH2FlowControl(t *testing.T) {
	answer := bytes.Repeat([]byte("x"), 3*h2StreamWindow)
	var bad, whole atomic.Int64
	srv := newH2CServer(t, &http.HTTP2Config{MaxReceiveBufferPerConnection: 64 << 10, MaxReceiveBufferPerStream: 16 << 10},
		func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil || int64(len(b)) != r.ContentLength || !bytes.HasSuffix(b, []byte("}\n")) {
				bad.Add(1)
			} else {
				whole.Add(1)
			}
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write(answer)
		})
	p := testPayloads(t, PayloadOptions{Batch: 2000, Format: FormatNDJSON, Bodies: 2})
	if _, body, _ := p.Sample(0); len(body) < 3*(64<<10) {
		t.Fatalf("a body of %d bytes does not test flow control", len(body))
	}
	res, err := Run(context.Background(), Config{Target: srv.URL, Client: ClientOptions{Conns: 1, Streams: 3},
		Payloads: p, Duration: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Answered == 0 || bad.Load() != 0 || uint64(whole.Load()) != res.Answered {
		t.Fatalf("errors %d %v, answered %d, bodies whole %d, cut %d", res.Errors, res.ErrorKinds, res.Answered,
			whole.Load(), bad.Load())
	}
}

// TestH2GoAway runs against a Go server that ends every connection with
// GOAWAY once it is idle (keep-alives off): the generator must dial again
// and lose nothing.
func TestH2GoAway(t *testing.T) {
	var posts atomic.Int64
	srv := newH2CServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		posts.Add(1)
		w.WriteHeader(http.StatusAccepted)
	})
	srv.Config.SetKeepAlivesEnabled(false)
	res, err := Run(context.Background(), Config{Target: srv.URL, Client: ClientOptions{Conns: 2, Streams: 2},
		Payloads: testPayloads(t, PayloadOptions{}), Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.GoAways < 2 || res.Errors != 0 || res.Answered == 0 || res.Answered != uint64(posts.Load()) {
		t.Fatalf("goaways %d, errors %d %v, answered %d of %d served", res.GoAways, res.Errors, res.ErrorKinds,
			res.Answered, posts.Load())
	}
}

// TestH2DrainTimeout checks that requests still unanswered DrainTimeout
// after the window are counted as errors and do not hold the run.
func TestH2DrainTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newH2CServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-release
	})
	defer close(release)
	res, err := Run(context.Background(), Config{Target: srv.URL, Client: ClientOptions{Conns: 1, Streams: 3},
		Payloads: testPayloads(t, PayloadOptions{}), Duration: 100 * time.Millisecond, DrainTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || res.ErrorKinds[errDrainTimeout.Error()] != 3 || res.Answered != 0 {
		t.Fatalf("errors %d %v, answered %d", res.Errors, res.ErrorKinds, res.Answered)
	}
}

// TestH2RefusedStreamRetried runs against a server that refuses one
// stream in three (RST_STREAM REFUSED_STREAM, as a server past its stream
// limit does): every refused request is sent again and answered.
func TestH2RefusedStreamRetried(t *testing.T) {
	rs := newRefusingServer(t, 3)
	res, err := Run(context.Background(), Config{Target: "http://" + rs.addr, Client: ClientOptions{Conns: 2, Streams: 4},
		Payloads: testPayloads(t, PayloadOptions{}), Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Retried == 0 || res.Answered != uint64(rs.answered.Load()) ||
		res.Retried != uint64(rs.refused.Load()) {
		t.Fatalf("errors %d %v, retried %d of %d refused, answered %d of %d", res.Errors, res.ErrorKinds,
			res.Retried, rs.refused.Load(), res.Answered, rs.answered.Load())
	}
}

// TestH2Template decodes the header blocks the generator sends, a
// connection's first and a later one, of each kind and format.
func TestH2Template(t *testing.T) {
	for _, f := range []Format{FormatJSON, FormatCEBinary} {
		p := testPayloads(t, PayloadOptions{Format: f, TradeShare: 0.5, Prefer: true, Priority: "high"})
		if err := p.Bind("http://127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
		tpl, err := newH2Template(p, "http", "127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		var got []hpack.HeaderField
		dec := hpack.NewDecoder(h2TableSize, func(hf hpack.HeaderField) { got = append(got, hf) })
		for i := range uint64(6) {
			got = got[:0]
			kind, body, h := p.Sample(i)
			block := tpl.appendBlock(nil, i > 0, kind, int(i%uint64(len(p.list))), i, p.runID)
			if _, err := dec.Write(block); err != nil {
				t.Fatalf("%s request %d: %v", f, i, err)
			}
			want := map[string]string{":method": "POST", ":scheme": "http", ":authority": "127.0.0.1:1",
				":path": "/v1/events/" + kind.String(), "content-length": strconv.Itoa(len(body))}
			for k := range h {
				want[strings.ToLower(k)] = h.Get(k)
			}
			if f == FormatCEBinary {
				want["ce-id"] = p.runID + "-" + strconv.FormatUint(i, 36)
			}
			checkFields(t, got, want)
		}
	}
}

func checkFields(t *testing.T, got []hpack.HeaderField, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	pseudo := true
	for _, f := range got {
		if want[f.Name] != f.Value {
			t.Fatalf("%s: %q, want %q", f.Name, f.Value, want[f.Name])
		}
		if f.IsPseudo() && !pseudo {
			t.Fatalf("pseudo-header %s after a regular field", f.Name)
		}
		pseudo = f.IsPseudo()
	}
}

// refusingServer is a minimal h2c server on the framer that refuses every
// every-th stream and answers the others 202.
type refusingServer struct {
	addr              string
	every             int64
	refused, answered atomic.Int64
}

func newRefusingServer(t *testing.T, every int64) *refusingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &refusingServer{addr: ln.Addr().String(), every: every}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { rs.serve(c) })
			t.Cleanup(func() { _ = c.Close() })
		}
	})
	return rs
}

func (rs *refusingServer) serve(c net.Conn) {
	defer c.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	dec := hpack.NewDecoder(h2TableSize, nil)
	_ = fr.WriteSettings()
	n := int64(0)
	refused := map[uint32]bool{}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if _, err := dec.DecodeFull(f.HeaderBlockFragment()); err != nil {
				return
			}
			if n++; n%rs.every == 0 {
				rs.refused.Add(1)
				refused[f.StreamID] = true
				_ = fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream)
			}
		case *http2.DataFrame:
			if f.Length > 0 {
				_ = fr.WriteWindowUpdate(0, f.Length)
			}
			if !f.StreamEnded() || refused[f.StreamID] {
				continue
			}
			rs.answered.Add(1) // before the answer leaves, for the test to compare
			hbuf.Reset()
			_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "202"})
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hbuf.Bytes(),
				EndStream: true, EndHeaders: true}); err != nil {
				return
			}
		}
	}
}
