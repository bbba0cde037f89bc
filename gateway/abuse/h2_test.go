package abuse

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestRapidReset: a client that opens streams and resets each at once
// (CVE-2023-44487) gets GOAWAY long before it is done, and costs the
// gateway nothing once it is gone.
func TestRapidReset(t *testing.T) {
	e := newEnv(t, nil)
	h := e.dialH2()
	const streams = 100_000
	sent := 0
	for id := uint32(1); sent < streams && !h.ended(); id += 2 {
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
			BlockFragment: h.request(http.MethodGet, "/v1/types")}); err != nil {
			break
		}
		if err := h.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
	}
	wait := 10 * time.Second
	if raceEnabled {
		wait = time.Second
	}
	ended := h.waitEnded(wait)
	t.Logf("rapid reset: %s after %d of %d streams", h.outcome(), sent, streams)
	switch {
	case raceEnabled:
		// Go's early-reset bound counts resets of streams whose handler
		// has not started; under the race detector the server can keep
		// up with the client and the bound never trips. What holds is
		// the recovery below.
	case !ended:
		t.Fatalf("%d streams opened and reset: the connection is still open", sent)
	case sent == streams:
		t.Errorf("all %d streams went through before the connection ended", streams)
	}
	e.recovered()
}

// TestContinuationFlood: a HEADERS frame followed by CONTINUATION frames
// that never end the header block (CVE-2023-45288) is cut once the block
// passes the header size bound, not buffered.
func TestContinuationFlood(t *testing.T) {
	e := newEnv(t, nil)
	h := e.dialH2()
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: false,
		BlockFragment: h.request(http.MethodPost, "/v1/events/quote")}); err != nil {
		t.Fatal(err)
	}
	// Each fragment is a literal header field without indexing, so that
	// the decoder has real fields to account for.
	var frag bytes.Buffer
	enc := hpack.NewEncoder(&frag)
	for frag.Len() < 16<<10-200 {
		_ = enc.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("a", 100), Sensitive: true})
	}
	const limit = 100 << 20
	sent := 0
	for sent < limit && !h.ended() {
		if err := h.fr.WriteContinuation(1, false, frag.Bytes()); err != nil {
			break
		}
		sent += frag.Len()
	}
	if !h.waitEnded(10 * time.Second) {
		t.Fatalf("%d MB of CONTINUATION: the connection is still open", sent>>20)
	}
	t.Logf("CONTINUATION flood: %s after %d KB", h.outcome(), sent>>10)
	if sent >= limit {
		t.Errorf("all %d MB went through before the connection ended", limit>>20)
	}
	e.recovered()
}

// controlFlood sends frames written by write in bursts of 50, each once
// the server has acknowledged all but the last burst (acks reads the
// count), up to n frames; it returns how many went out before the
// connection ended. Reading every ACK keeps Go's own bound on queued
// control frames from ever firing: the flood costs the server a frame
// parsed and an ACK written per frame, for as long as the client likes.
func controlFlood(t *testing.T, h *h2client, n int, write func(i int) error, acks func() int) int {
	t.Helper()
	const burst = 50
	sent := 0
	for sent < n && !h.ended() {
		for range burst {
			if err := write(sent); err != nil {
				return sent
			}
			sent++
		}
		deadline := time.Now().Add(time.Second)
		for acks() < sent-burst && !h.ended() {
			if time.Now().After(deadline) {
				t.Logf("the server stopped acknowledging: %d ACKs for %d frames", acks(), sent)
				return sent
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return sent
}

// TestSettingsFlood: a client that sends SETTINGS frames without pause,
// reading every ACK, is closed past the control frame limit rather than
// answered for as long as it likes.
func TestSettingsFlood(t *testing.T) {
	e := newEnv(t, nil)
	h := e.dialH2()
	const frames = 20_000
	sent := controlFlood(t, h, frames, func(int) error {
		return h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	}, func() int { h.mu.Lock(); defer h.mu.Unlock(); return h.setAcks })
	ended := h.waitEnded(5 * time.Second)
	h.mu.Lock()
	acks := h.setAcks
	h.mu.Unlock()
	t.Logf("SETTINGS flood: %s after %d of %d frames, %d ACKs", h.outcome(), sent, frames, acks)
	if !ended {
		t.Fatalf("%d SETTINGS frames: the connection is still open", sent)
	}
	if got := e.counter(`sluice_gateway_http2_errors_total{reason="control_flood"}`); got < 1 {
		t.Errorf("flood closes counted %v, want at least 1", got)
	}
	e.recovered()
}

// TestPingFlood: a client that sends PINGs without pause, reading every
// ACK, is closed past the control frame limit: Go's HTTP/2 server answers
// every PING on its own.
func TestPingFlood(t *testing.T) {
	e := newEnv(t, nil)
	h := e.dialH2()
	const frames = 20_000
	sent := controlFlood(t, h, frames, func(i int) error {
		return h.fr.WritePing(false, [8]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	}, func() int { h.mu.Lock(); defer h.mu.Unlock(); return h.pingAcks })
	ended := h.waitEnded(5 * time.Second)
	h.mu.Lock()
	acks := h.pingAcks
	h.mu.Unlock()
	t.Logf("PING flood: %s after %d of %d frames, %d ACKs", h.outcome(), sent, frames, acks)
	if !ended {
		t.Fatalf("%d PINGs: the connection is still open", sent)
	}
	if got := e.counter(`sluice_gateway_http2_errors_total{reason="control_flood"}`); got < 1 {
		t.Errorf("flood closes counted %v, want at least 1", got)
	}
	e.recovered()
}

// TestPingWithinLimit: a client that pings at a modest rate keeps its
// connection.
func TestPingWithinLimit(t *testing.T) {
	e := newEnv(t, nil)
	h := e.dialH2()
	for i := range 20 {
		if err := h.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
		BlockFragment: h.request(http.MethodGet, "/v1/types")}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h, 1)
	if h.ended() {
		t.Fatalf("20 PINGs closed the connection: %s", h.outcome())
	}
}

// waitStatus waits for the response headers of stream id and returns
// their :status.
func waitStatus(t *testing.T, h *h2client, id uint32) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		s := h.status[id]
		h.mu.Unlock()
		if s != "" {
			return s
		}
		if h.ended() {
			t.Fatalf("stream %d: no response, the connection ended: %s", id, h.outcome())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("stream %d: no response headers within 10 s", id)
	return ""
}

// TestHPACKBomb: a header block that puts one 4 KB header in the dynamic
// table and then refers to it thousands of times (a few bytes on the wire,
// tens of megabytes decoded) is refused without the gateway decoding it
// into memory.
func TestHPACKBomb(t *testing.T) {
	e := newEnv(t, nil)
	h := e.dialH2()
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	enc.SetMaxDynamicTableSizeLimit(4096)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "gateway"}, {Name: ":path", Value: "/v1/types"}} {
		_ = enc.WriteField(f)
	}
	// A literal with incremental indexing lands at dynamic index 62
	// (the static table has 61 entries); then 0xbe (indexed field 62) per
	// copy.
	_ = enc.WriteField(hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", 3000)})
	const copies = 12_000 // 12 KB on the wire, 36 MB decoded
	for range copies {
		blk.WriteByte(0x80 | 62)
	}
	before := rss()
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
		BlockFragment: blk.Bytes()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var status string
	for time.Now().Before(deadline) && status == "" && !h.ended() {
		h.mu.Lock()
		status, resets := h.status[1], h.resets
		h.mu.Unlock()
		if status != "" || resets > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.mu.Lock()
	status, resets := h.status[1], h.resets
	h.mu.Unlock()
	t.Logf("HPACK bomb: status %q, %d resets, %s, RSS %+d MB", status, resets, h.outcome(), (rss()-before)>>20)
	if status != "431" && resets == 0 && !h.ended() {
		t.Fatalf("HPACK bomb answered %q: want 431, RST_STREAM or the connection closed", status)
	}
	e.recovered()
}

// TestZeroWindowPeer: a client that advertises a zero flow-control window
// and never reads a response holds its streams only until the gateway's
// write deadline, not for as long as the connection stays open.
func TestZeroWindowPeer(t *testing.T) {
	e := newEnv(t, func(o *gateway.Options) {
		o.ReadHeaderTimeout = 500 * time.Millisecond
		o.BodyTimeout = 500 * time.Millisecond
		o.RequestTimeout = 500 * time.Millisecond
		o.MaxBodyBytes = 64 << 10
		o.BodyMinRate = 64 << 10
	})
	h := e.dialH2(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	const streams = 50
	for i := range streams {
		id := uint32(2*i + 1)
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
			BlockFragment: h.request(http.MethodGet, "/v1/types")}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	resets := 0
	for time.Now().Before(deadline) && resets < streams && !h.ended() {
		time.Sleep(20 * time.Millisecond)
		h.mu.Lock()
		resets = h.resets
		h.mu.Unlock()
	}
	h.mu.Lock()
	data := 0
	for _, n := range h.data {
		data += n
	}
	h.mu.Unlock()
	t.Logf("zero window: %d of %d streams reset after %v, %d DATA bytes, %s", resets, streams,
		time.Since(start).Round(time.Millisecond), data, h.outcome())
	if resets < streams && !h.ended() {
		t.Fatalf("%d of %d streams stuck behind a zero window still open after 20 s", streams-resets, streams)
	}
	e.recovered()
}

// TestProtocolErrorsCounted: a frame Go's HTTP/2 server refuses is counted
// under its reason in sluice_gateway_http2_errors_total.
func TestProtocolErrorsCounted(t *testing.T) {
	e := newEnv(t, nil)
	h := e.dialH2()
	// A PING belongs to the connection (stream 0); on stream 3 it is a
	// connection error.
	if err := h.fr.WriteRawFrame(http2.FramePing, 0, 3, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if !h.waitEnded(10 * time.Second) {
		t.Fatal("a PING on a stream did not end the connection")
	}
	const name = `sluice_gateway_http2_errors_total{reason="frame_ping_has_stream"}`
	opstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if got := e.counter(name); got != 1 {
			return fmt.Errorf("%s = %v, want 1", name, got)
		}
		return nil
	})
	t.Logf("PING on a stream: %s, counted as frame_ping_has_stream", h.outcome())
}
