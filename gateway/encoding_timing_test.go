package gateway

import "testing"

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
