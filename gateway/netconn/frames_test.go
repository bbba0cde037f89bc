package netconn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// h2Stream is what an h2c client sends: the preface, then the frames that
// write makes on a Framer.
func h2Stream(tb testing.TB, write func(fr *http2.Framer)) []byte {
	tb.Helper()
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&b, nil)
	write(fr)
	return b.Bytes()
}

// scanIn feeds b to a fresh watch in reads of at most chunk bytes and
// returns the watch and the first error.
func scanIn(b []byte, chunk, limit int) (*frameWatch, error) {
	f := &frameWatch{limit: limit}
	for len(b) > 0 {
		k := min(chunk, len(b))
		if err := f.scan(b[:k]); err != nil {
			return f, err
		}
		b = b[k:]
	}
	return f, nil
}

// TestFrameWatch: the watch counts PING and SETTINGS frames that ask for
// an answer, whatever way the reads split the stream, and nothing else:
// not ACKs, not bytes inside payloads that look like frame headers, not an
// HTTP/1.1 connection.
func TestFrameWatch(t *testing.T) {
	// A DATA payload holding what would be a PING header if the watch
	// lost its place.
	fakePing := []byte{0, 0, 8, framePing, 0, 0, 0, 0, 0}
	mixed := h2Stream(t, func(fr *http2.Framer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		_ = fr.WriteSettingsAck()
		for range 3 {
			_ = fr.WritePing(false, [8]byte{1})
			_ = fr.WritePing(true, [8]byte{2})
			_ = fr.WriteData(1, false, bytes.Repeat(fakePing, 100))
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: []byte{0x82}, EndHeaders: true})
		}
		_ = fr.WriteData(1, true, nil)
	})
	for _, chunk := range []int{1, 2, 7, 9, 10, 24, 25, 4096, len(mixed)} {
		f, err := scanIn(mixed, chunk, 4)
		if err != nil || f.count != 4 || f.state != watchHeader || f.n != 0 {
			t.Errorf("reads of %d: count %d, state %d, %d header bytes pending, %v; want 4 counted, at a frame boundary",
				chunk, f.count, f.state, f.n, err)
		}
		if _, err := scanIn(mixed, chunk, 3); !errors.Is(err, ErrControlFlood) {
			t.Errorf("reads of %d with limit 3: %v, want ErrControlFlood", chunk, err)
		}
	}
	h1 := []byte("POST /v1/events/quote HTTP/1.1\r\nHost: x\r\n\r\n" + string(mixed))
	if f, err := scanIn(h1, 5, 1); err != nil || f.state != watchOff {
		t.Errorf("HTTP/1.1: state %d, %v; want the watch off", f.state, err)
	}
}

// FuzzFrameWatch: any byte stream, however the reads split it, leaves the
// watch in the same state with the same count as one read does.
func FuzzFrameWatch(f *testing.F) {
	f.Add(h2Stream(f, func(fr *http2.Framer) {
		_ = fr.WritePing(false, [8]byte{})
		_ = fr.WriteData(1, false, []byte("hello"))
		_ = fr.WriteSettings()
	}), 3)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), 1)
	f.Add([]byte(http2.ClientPreface+"\x00\x00"), 2)
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		chunk = 1 + abs(chunk)%64
		whole, werr := scanIn(b, len(b)+1, 1<<30)
		split, serr := scanIn(b, chunk, 1<<30)
		if werr != nil || serr != nil || whole.state != split.state || whole.count != split.count ||
			whole.skip != split.skip || whole.n != split.n {
			t.Fatalf("whole %+v %v, in reads of %d %+v %v", whole, werr, chunk, split, serr)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestPingFloodClosesConnection: over TCP, a connection that sends more
// PINGs in a second than the limit is closed: the server's Read fails with
// ErrControlFlood, the client sees the connection end, and the flood is
// reported once.
func TestPingFloodClosesConnection(t *testing.T) {
	var floods atomic.Int64
	ln, err := Listen("127.0.0.1:0", Options{ReadBuffer: 4096, CoalesceWrites: true, ControlFrameLimit: 50,
		OnControlFlood: func() { floods.Add(1) }}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	go func() {
		_, _ = io.WriteString(client, http2.ClientPreface)
		fr := http2.NewFramer(client, nil)
		for i := range 1000 {
			if fr.WritePing(false, [8]byte{byte(i)}) != nil {
				return
			}
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = io.Copy(io.Discard, c)
	if !errors.Is(err, ErrControlFlood) {
		t.Fatalf("reading the flood: %v, want ErrControlFlood", err)
	}
	if n := floods.Load(); n != 1 {
		t.Errorf("OnControlFlood called %d times, want once", n)
	}
	if _, err := io.Copy(io.Discard, bufio.NewReader(client)); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("client read after the close: %v", err) // EOF or reset: either says closed
	}
}
