package h2edge

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkAdapter measures one POST through the adapter: HEADERS and a
// 100-byte DATA frame in, the handler reading the body and answering 202
// with a 40-byte JSON body, 32 streams at a time on one h2c connection.
// The client side is a bare framer with a pre-encoded header block
// (frames reused), so allocs/op is nearly all the server's.
func BenchmarkAdapter(b *testing.B) {
	answer := []byte(`{"id":"0123456789abcdef0123456789abcdef"}`)
	buf := make([]byte, 512)
	port := serveTest(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		w.Header()["Content-Type"] = []string{"application/json"}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(answer)
	}), false, Options{MaxConcurrentStreams: 64})
	c, _ := rawConn(b, port)
	bw := bufio.NewWriterSize(c, 64<<10)
	fr := http2.NewFramer(bw, bufio.NewReaderSize(c, 64<<10))
	fr.SetReuseFrames()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "bench"},
		{":path", "/v1/events/quote"}, {"content-type", "application/json"}, {"content-length", "100"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := hb.Bytes()
	body := bytes.Repeat([]byte("x"), 100)
	const window = 32
	id := uint32(1)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(window, b.N-done)
		for range n {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
			_ = fr.WriteData(id, true, body)
			id += 2
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		for ended := 0; ended < n; {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				if f.StreamEnded() {
					ended++
				}
				if f.Length > 0 {
					_ = fr.WriteWindowUpdate(0, f.Length)
				}
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				_ = fr.WritePing(true, f.Data)
			}
		}
		done += n
	}

}
