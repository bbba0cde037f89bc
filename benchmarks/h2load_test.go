package benchmarks

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/benchmarks/baseline"
	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

// h2loadOutput is the summary of an h2load 1.52 timing-based run.
const h2loadOutput = `starting benchmark...
spawning thread #0: 16 total client(s). Timing-based test with 500ms warm-up time and 1500ms main duration for measurements.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 1.50s, 40123.33 req/s, 4.21MB/s
requests: 60185 total, 60697 started, 60185 done, 60180 succeeded, 5 failed, 0 errored, 0 timeout
status codes: 60000 2xx, 0 3xx, 0 4xx, 180 5xx
traffic: 6.31MB (6617340) total, 1.04MB (1093728) headers (space savings 91.12%), 3.96MB (4152765) data
`

func TestH2LoadParse(t *testing.T) {
	var h H2Load
	if err := h.parse(h2loadOutput); err != nil {
		t.Fatal(err)
	}
	if h.Requests != 60185 || h.Failed != 5 || h.Status["2xx"] != 60000 || h.Status["5xx"] != 180 || len(h.Status) != 2 ||
		h.ReqPerSec != 40000 {
		t.Fatalf("%+v", h)
	}
	if err := h.parse("connect error"); err == nil {
		t.Fatal("an output without a summary parsed")
	}
}

// TestH2LoadArgs checks the shape: streams per connection over HTTP/2,
// connections of one request over HTTP/1.1 (no pipelining).
func TestH2LoadArgs(t *testing.T) {
	spec := h2loadSpec{url: "http://127.0.0.1:1/v1/events/quote", proto: loadgen.ProtoH2C, conns: 16, streams: 32,
		header:   http.Header{"Content-Type": {"application/json"}, "Prefer": {"return=representation"}},
		bodyFile: "/w/b.json", warmup: 500 * time.Millisecond, dur: 1500 * time.Millisecond}
	got := strings.Join(spec.args(), " ")
	want := "-c 16 -m 32 -t 1 -D 1500ms --warm-up-time 500ms -d /w/b.json -H content-type: application/json -H prefer: return=representation http://127.0.0.1:1/v1/events/quote"
	if got != want {
		t.Fatalf("args\n%s\nwant\n%s", got, want)
	}
	spec.proto = loadgen.ProtoH1
	if a := spec.args(); !slices.Contains(a, "--h1") || a[slices.Index(a, "-c")+1] != "512" || a[slices.Index(a, "-m")+1] != "1" {
		t.Fatalf("h1 args %v", a)
	}
}

// TestH2LoadRun runs h2load against the baseline server, where h2load is
// installed.
func TestH2LoadRun(t *testing.T) {
	path, err := exec.LookPath("h2load")
	if err != nil {
		t.Skip("h2load not installed (apt-get install nghttp2-client)")
	}
	srv, err := baseline.New(baseline.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	s := &suite{o: Options{Proto: loadgen.ProtoH2C, Conns: 2, Streams: 4, Warmup: 100 * time.Millisecond,
		H2LoadDuration: 300 * time.Millisecond, WorkDir: t.TempDir(), TradeShare: 0.2}, h2load: path,
		h2loads: map[string]*H2Load{}, systems: map[string]*system{}, instruments: sampleInstruments()}
	s.o.setDefaults()
	v := variants["baseline-plain"]
	s.systems[v.system] = &system{name: v.system, url: "http://" + srv.Addr()}
	s.crossCheck(context.Background(), v)
	h := s.h2loads[v.name]
	if h == nil || h.Err != "" || h.ReqPerSec <= 0 || h.Failed != 0 || len(h.Status) != 1 || h.Status["2xx"] == 0 || h.CPU <= 0 {
		t.Fatalf("%+v", h)
	}
	if !strings.Contains(h.Command, "-c 2 -m 4") || strings.Contains(h.Command, filepath.Dir(s.o.WorkDir)) {
		t.Fatalf("command %q", h.Command)
	}
}
