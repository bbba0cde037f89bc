package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-dev/sluice/schemas"
)

// BenchmarkEdgePublish measures one single-quote POST /v1/events/quote
// through the whole gateway over h2c, on std (net/http's HTTP/2 server and
// the handler on a goroutine per stream) and fast (gateway/h2edge's fast
// path): 32 streams at a time on one connection from a bare framer (its
// header blocks hpack-encoded per request, as h2load does, so repeated
// fields are indexed), a real NATS server in a child process, admission
// off. allocs/op includes the client's few; cpu-µs/op is this process's
// CPU time (user and system) per request, the client's included: the
// time per op is mostly the batches' linger, the CPU what the gateway
// spends.
func BenchmarkEdgePublish(b *testing.B) { benchEdge(b, false) }

// BenchmarkEdgeRequest is BenchmarkEdgePublish with Prefer:
// return=representation: each request waits for its event's result, which
// a responder in this process sends back (a reply frame per batch frame,
// as a worker would, without a worker's work; its CPU is in cpu-µs/op).
func BenchmarkEdgeRequest(b *testing.B) { benchEdge(b, true) }

func benchEdge(b *testing.B, sync bool) {
	for _, server := range []string{HTTP2Std, HTTP2Fast} {
		b.Run(server, func(b *testing.B) {
			nc, err := nats.Connect(runNATSProcess(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			s, err := New(Options{Conn: nc, Listen: "127.0.0.1:0", Source: testSource,
				Admission: AdmissionOptions{Disabled: true}, HTTP2Server: server})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = s.Shutdown(ctx)
			})
			var extra []hpack.HeaderField
			if sync {
				benchResponder(b, nc, s.opts.Subjects.Ingest(schemas.KindQuote))
				extra = append(extra, hpack.HeaderField{Name: "prefer", Value: "return=representation"})
			}
			benchPosts(b, s.Addr(), []byte(quoteJSONBody("AAPL")), extra...)
		})
	}
}

// benchResponder answers the batch frames on subject with their results,
// as workers do.
func benchResponder(b *testing.B, nc *nats.Conn, subject string) {
	rs := &responder{}
	_, err := nc.Subscribe(subject, func(msg *nats.Msg) {
		if reply := rs.answer(msg); reply != nil && msg.Reply != "" {
			out := nats.NewMsg(msg.Reply)
			out.Header.Set(schemas.HeaderFrame, schemas.FrameReplyV1)
			out.Data = reply
			_ = nc.PublishMsg(out)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is this process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPosts sends b.N POSTs of body to /v1/events/quote at addr over one
// h2c connection, 32 streams at a time, with the extra fields, and waits
// for every answer; it reports cpu-µs/op.
func benchPosts(b *testing.B, addr string, body []byte, extra ...hpack.HeaderField) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bw := bufio.NewWriterSize(c, 64<<10)
	_, _ = io.WriteString(bw, http2.ClientPreface)
	fr := http2.NewFramer(bw, bufio.NewReaderSize(c, 64<<10))
	fr.SetReuseFrames()
	_ = fr.WriteSettings()
	_ = fr.WriteWindowUpdate(0, 1<<30)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "bench"}, {Name: ":path", Value: "/v1/events/quote"},
		{Name: "content-type", Value: "application/json"}, {Name: "content-length", Value: "100"}}
	fields[5].Value = strconv.Itoa(len(body))
	fields = append(fields, extra...)
	const window = 32
	id := uint32(1)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	cpu := cpuTime()
	for done := 0; done < b.N; {
		n := min(window, b.N-done)
		for range n {
			hb.Reset()
			for _, f := range fields {
				_ = enc.WriteField(f)
			}
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true})
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
			case *http2.HeadersFrame:
				if f.StreamEnded() {
					ended++
				}
			case *http2.DataFrame:
				if f.StreamEnded() {
					ended++
				}
			case *http2.RSTStreamFrame:
				b.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = fr.WritePing(true, f.Data)
				}
			}
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e3, "cpu-µs/op")
}
