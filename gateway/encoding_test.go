package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// bomb returns about size bytes of zeros compressed with c as concatenated
// members (gzip) or frames (zstd) of 1 MiB each: a decoder inflates them
// all as one body, and the test builds 1 GiB in milliseconds.
func bomb(t testing.TB, c coding, size int) []byte {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var one []byte
	if c == codingGzip {
		one = gzipped(t, zeros)
	} else {
		one = zstded(t, zeros)
	}
	return bytes.Repeat(one, size>>20)
}

// TestContentEncoding: gzip and zstd bodies are decoded as their plain
// selves, over both protocols; other codings are 415 with Accept-Encoding;
// corrupt and truncated streams are 400.
func TestContentEncoding(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		plain := ndjson100()
		cases := []struct {
			name, coding string
			body         []byte
			status       int
			detail       string
		}{
			{"gzip", "gzip", gzipped(t, plain), 202, ""},
			{"x-gzip", "x-gzip", gzipped(t, plain), 202, ""},
			{"GZIP", "GZIP", gzipped(t, plain), 202, ""},
			{"zstd", "zstd", zstded(t, plain), 202, ""},
			{"identity", "identity", plain, 202, ""},
			{"two gzip members", "gzip", append(gzipped(t, plain[:len(plain)/2]), gzipped(t, plain[len(plain)/2:])...), 202, ""},
			{"br", "br", plain, 415, `Content-Encoding \"br\" is not supported`},
			{"deflate", "deflate", plain, 415, "gzip, zstd"},
			{"a list", "gzip, zstd", plain, 415, "2 content codings"},
			{"gzip of plain bytes", "gzip", plain, 400, "corrupt gzip body"},
			{"zstd of plain bytes", "zstd", plain, 400, "corrupt zstd body"},
			{"truncated gzip", "gzip", gzipped(t, plain)[:100], 400, "corrupt gzip body"},
			{"truncated zstd", "zstd", zstded(t, plain)[:50], 400, "corrupt zstd body"},
			{"gzip with trailing garbage", "gzip", append(gzipped(t, plain), "garbage"...), 400, "corrupt gzip body"},
			{"empty gzip", "gzip", nil, 400, "empty body"},
		}
		for _, c := range cases {
			resp, body := e.do(http.MethodPost, "/v1/events/quote", "application/x-ndjson", bytes.NewReader(c.body), "Content-Encoding", c.coding)
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.detail) {
				t.Errorf("%s: %d %s, want %d with %q", c.name, resp.StatusCode, body, c.status, c.detail)
				continue
			}
			switch c.status {
			case 202:
				var a struct{ Accepted int }
				if err := json.Unmarshal(body, &a); err != nil || a.Accepted != 100 {
					t.Errorf("%s: %s", c.name, body)
				}
			case 415:
				if got := resp.Header.Get("Accept-Encoding"); got != "gzip, zstd" {
					t.Errorf("%s: Accept-Encoding %q, want \"gzip, zstd\"", c.name, got)
				}
				fallthrough
			default:
				if ct := resp.Header.Get("Content-Type"); ct != mediaProblem {
					t.Errorf("%s: Content-Type %q", c.name, ct)
				}
			}
		}
	})
}

// TestContentEncodingBound: the decompressed size is bounded by
// --max-body: exactly the bound passes, one byte more is 413.
func TestContentEncodingBound(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		const max = 64 << 10
		e := newTestEnv(t, mode, nil, func(o *Options) { o.MaxBodyBytes = max })
		line := []byte(`{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200}` + "\n")
		fit := bytes.Repeat(line, max/len(line))
		fit = append(fit, bytes.Repeat([]byte(" "), max-len(fit))...) // exactly max bytes
		for _, c := range []struct {
			name string
			enc  func(testing.TB, []byte) []byte
		}{{"gzip", gzipped}, {"zstd", zstded}} {
			resp, body := e.do(http.MethodPost, "/v1/events/quote", "application/x-ndjson", bytes.NewReader(c.enc(t, fit)), "Content-Encoding", c.name)
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("%s of exactly --max-body: %d %s", c.name, resp.StatusCode, body)
			}
			over := append(fit[:len(fit):len(fit)], ' ')
			resp, body = e.do(http.MethodPost, "/v1/events/quote", "application/x-ndjson", bytes.NewReader(c.enc(t, over)), "Content-Encoding", c.name)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "--max-body") {
				t.Errorf("%s of --max-body + 1: %d %s", c.name, resp.StatusCode, body)
			}
		}
	})
}

// TestDecompressionBomb: 1 GiB of zeros compressed to about 1 MB (gzip)
// or much less (zstd) is 413, and the gateway allocates nowhere near the
// inflated size to say so.
func TestDecompressionBomb(t *testing.T) {
	for _, c := range []coding{codingGzip, codingZstd} {
		t.Run(c.String(), func(t *testing.T) {
			forModes(t, func(t *testing.T, mode string) {
				e := newTestEnv(t, mode, nil)
				data := bomb(t, c, 1<<30)
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				resp, body := e.do(http.MethodPost, "/v1/events/quote", "application/x-ndjson", bytes.NewReader(data), "Content-Encoding", c.String())
				took := time.Since(start)
				runtime.ReadMemStats(&after)
				alloc := after.TotalAlloc - before.TotalAlloc
				t.Logf("%s bomb of %d bytes (1 GiB inflated): %d in %v, %d MiB allocated by the whole test process meanwhile",
					c, len(data), resp.StatusCode, took, alloc>>20)
				if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "--max-body") {
					t.Fatalf("bomb: %d %s, want 413", resp.StatusCode, body)
				}
				// The bound is 4 MiB; the body buffer grows by doubling,
				// and the client's 1 MB and the other subtests run
				// meanwhile: 128 MiB is far below 1 GiB and far above
				// what a bounded read needs.
				if alloc > 128<<20 {
					t.Errorf("allocated %d MiB answering a bomb bounded at 4 MiB", alloc>>20)
				}
				if got := e.counter(`sluice_gateway_requests_total{status="413"}`); got != 1 {
					t.Errorf("413 counted %d times", got)
				}
			})
		})
	}
}

// TestZstdWindowBound: a zstd frame asking for a window past
// zstdMaxWindow is refused (413) without the decoder allocating it.
func TestZstdWindowBound(t *testing.T) {
	e := newTestEnv(t, "h1", nil, func(o *Options) { o.MaxBodyBytes = 64 << 20 })
	// A frame header (RFC 8878) asking for a 64 MiB window
	// (Window_Descriptor 0x80: 2^(10+16)), then one raw block, the last,
	// of one byte.
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x80, 0x09, 0x00, 0x00, '['}
	buf := bytes.NewReader(frame)
	resp, body := e.do(http.MethodPost, "/v1/events/quote", "application/x-ndjson", buf, "Content-Encoding", "zstd")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "window") {
		t.Fatalf("64 MiB window: %d %s, want 413", resp.StatusCode, body)
	}
}

// FuzzInflate: whatever the compressed bytes, reading them neither panics
// nor returns more than the bound, and a refusal is 400 or 413.
func FuzzInflate(f *testing.F) {
	plain := ndjson100()
	f.Add(uint8(codingGzip), gzipped(f, plain))
	f.Add(uint8(codingZstd), zstded(f, plain))
	f.Add(uint8(codingGzip), gzipped(f, plain)[:40])
	f.Add(uint8(codingZstd), bomb(f, codingZstd, 2<<20))
	f.Add(uint8(codingGzip), []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	br := bodyReader{max: 1 << 20, timeout: time.Second}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		c := codingGzip
		if which%2 == 0 {
			c = codingZstd
		}
		r, _ := http.NewRequest(http.MethodPost, "/", io.NopCloser(bytes.NewReader(data)))
		r.Header.Set("Content-Encoding", c.String())
		buf, derr := br.read(nil, r, nil, time.Now())
		if int64(len(buf)) > br.max+1 {
			t.Fatalf("read %d bytes past the bound %d", len(buf), br.max)
		}
		if derr != nil && derr.status != http.StatusBadRequest && derr.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d: %s", derr.status, derr.detail)
		}
		// The fast edge's decodeCoded, from the body in memory, gives the
		// same bytes and the same answer.
		mem, merr := br.decodeCoded(r, c, data, nil)
		if (derr == nil) != (merr == nil) || derr != nil && (derr.status != merr.status || derr.detail != merr.detail) {
			t.Fatalf("read: %v; decodeCoded: %v", derr, merr)
		}
		if derr == nil && !bytes.Equal(buf, mem) {
			t.Fatalf("decodeCoded: %d bytes, read: %d", len(mem), len(buf))
		}
	})
}

// TestCompressedBodyTimeout: a compressed body that stalls mid-way is 408,
// as a plain one: the time bounds hold on the wire bytes.
func TestCompressedBodyTimeout(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.BodyTimeout = 300 * time.Millisecond; o.ReadHeaderTimeout = 200 * time.Millisecond })
		for _, c := range []coding{codingGzip, codingZstd} {
			data := gzipped(t, ndjson100())
			if c == codingZstd {
				data = zstded(t, ndjson100())
			}
			pr, pw := io.Pipe()
			req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/events/quote", pr)
			req.ContentLength = int64(len(data))
			req.Header.Set("Content-Type", "application/x-ndjson")
			req.Header.Set("Content-Encoding", c.String())
			go func() { _, _ = pw.Write(data[:len(data)/2]) }()
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			pw.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("%s stalled: %d %s, want 408", c, resp.StatusCode, body)
			}
		}
	})
}
