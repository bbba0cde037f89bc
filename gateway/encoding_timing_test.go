package gateway

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkGatewayNDJSON100Gzip and BenchmarkGatewayNDJSON100Zstd are
// BenchmarkGatewayNDJSON100 with its body compressed: the difference is
// what decompressing a 100-event batch costs per request (pooled
// decoders). SetBytes counts the decompressed bytes.
func BenchmarkGatewayNDJSON100Gzip(b *testing.B) { benchCodedNDJSON100(b, codingGzip) }

func BenchmarkGatewayNDJSON100Zstd(b *testing.B) { benchCodedNDJSON100(b, codingZstd) }

func benchCodedNDJSON100(b *testing.B, c coding) {
	s := newBenchServer(b, BatchOptions{MaxEvents: 100})
	plain := ndjson100()
	data := gzipped(b, plain)
	if c == codingZstd {
		data = zstded(b, plain)
	}
	br := newBenchRequest("application/x-ndjson", data)
	br.r.Header.Set("Content-Encoding", c.String())
	br.serve(b, s)
	b.SetBytes(int64(len(plain)))
	b.ReportMetric(float64(len(data)), "wire-bytes")
	p := startPerEvent(b, 100)
	for i := 0; i < b.N; i++ {
		br.serve(b, s)
	}
	p.stop()
}

// BenchmarkBodyRead is bodyReader.read alone on a 100-quote NDJSON body
// (varied symbols, prices, sizes and times, so that it compresses as a
// real batch would rather than as one line repeated), plain and
// compressed: what decompression adds to a request, without NATS and the
// batcher in the figure.
func BenchmarkBodyRead(b *testing.B) {
	plain := variedNDJSON100()
	for _, c := range []coding{codingIdentity, codingGzip, codingZstd} {
		b.Run(c.String(), func(b *testing.B) {
			data := plain
			switch c {
			case codingGzip:
				data = gzipped(b, plain)
			case codingZstd:
				data = zstded(b, plain)
			}
			br := newBenchRequest("application/x-ndjson", data)
			if c != codingIdentity {
				br.r.Header.Set("Content-Encoding", c.String())
			}
			rd := bodyReader{max: DefaultMaxBodyBytes, timeout: DefaultBodyTimeout, minRate: DefaultBodyMinRate}
			var buf []byte
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				br.body.Reset(br.data)
				br.r.ContentLength = int64(len(br.data))
				var derr *decodeError
				if buf, derr = rd.read(br.w, br.r, buf, time.Time{}); derr != nil || len(buf) != len(plain) {
					b.Fatalf("read %d bytes: %v", len(buf), derr)
				}
			}
			b.ReportMetric(float64(len(data)), "wire-B")
		})
	}
}

func variedNDJSON100() []byte {
	var out []byte
	syms := []string{"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM"}
	for i := range 100 {
		bid := 100 + float64((i*7919)%10000)/100
		out = fmt.Appendf(out, `{"symbol":%q,"bid":%.2f,"ask":%.2f,"bid_size":%d,"ask_size":%d,"venue":"XNAS","ts":"2025-01-02T15:04:05.%09dZ"}`+"\n",
			syms[i%len(syms)], bid, bid+0.01*float64(1+i%5), 100*(1+(i*31)%17), 100*(1+(i*17)%13), (i*104729)%1000000000)
	}
	return out
}
