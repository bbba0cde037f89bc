package abuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

// goodQuote is a quote every gateway accepts.
const goodQuote = `{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200}`

// env is one gateway on a free loopback port, on its own embedded NATS
// server, with a quote worker so that request-reply answers come from a
// real worker. The tests of this package do not run in parallel: each
// compares the process's goroutines and RSS with its own baseline.
type env struct {
	t       *testing.T
	gw      *gateway.Server
	set     *metrics.Set
	addr    string
	h1, h2c *http.Client
	base    baseline
}

// newEnv starts the gateway with opts adjusted by adjust, and records the
// baseline once it has answered a request over each protocol.
func newEnv(t *testing.T, adjust func(*gateway.Options)) *env {
	t.Helper()
	_, url := opstest.RunNATS(t)
	connect := func(name string) *nats.Conn {
		nc, err := nats.Connect(url, nats.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	store := enrich.NewStore()
	store.Replace(enrich.Sample())
	w, err := workers.New(workers.Options{Conn: connect("worker"), Group: "quotes",
		Kinds: []schemas.Kind{schemas.KindQuote}, Enricher: &enrich.Enricher{Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, w.Shutdown) })
	e := &env{t: t, set: metrics.NewSet()}
	opts := gateway.Options{Conn: connect("gateway"), Listen: "127.0.0.1:0", Metrics: e.set,
		Admission: gateway.AdmissionOptions{Disabled: true},
		// The default is the fast edge (gateway/h2edge);
		// SLUICE_HTTP2_SERVER=std runs the suite against net/http's
		// HTTP/2 server (scripts/test.sh runs both).
		HTTP2Server: os.Getenv("SLUICE_HTTP2_SERVER")}
	if adjust != nil {
		adjust(&opts)
	}
	if e.gw, err = gateway.New(opts); err != nil {
		t.Fatal(err)
	}
	if err := e.gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, e.gw.Shutdown) })
	e.addr = e.gw.Addr()
	e.h1 = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	e.h2c = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: p}}
	t.Cleanup(e.h1.CloseIdleConnections)
	t.Cleanup(e.h2c.CloseIdleConnections)
	e.mustServe()
	e.base = measure()
	return e
}

func shutdown(t *testing.T, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// post sends body to /v1/events/quote with c and returns the status, the
// Content-Type and the body of the answer.
func (e *env) post(c *http.Client, ct string, body []byte, hdr ...string) (int, string, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+e.addr+"/v1/events/quote", bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, err
}

// mustServe checks that a good request is answered 202 over HTTP/1.1 and
// h2c, on fresh connections, and returns the slower answer's latency.
func (e *env) mustServe() time.Duration {
	e.t.Helper()
	var worst time.Duration
	for _, c := range []*http.Client{e.h1, e.h2c} {
		c.CloseIdleConnections()
		start := time.Now()
		status, _, body, err := e.post(c, "application/json", []byte(goodQuote))
		if err != nil || status != http.StatusAccepted {
			e.t.Fatalf("a good request got %d %s, %v", status, body, err)
		}
		worst = max(worst, time.Since(start))
	}
	return worst
}

// baseline is what the process holds between attacks.
type baseline struct {
	goroutines int
	rss        int64 // bytes
}

// measure reads the process's goroutines and RSS, after returning free
// memory to the OS.
func measure() baseline {
	debug.FreeOSMemory()
	return baseline{goroutines: runtime.NumGoroutine(), rss: rss()}
}

// rss is the process's resident set in bytes (0 where /proc is missing).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// Slack over the baseline that recovery allows: a few goroutines of the
// HTTP clients' idle connections and the runtime, and heap the runtime
// keeps mapped.
const (
	goroutineSlack = 8
	rssSlack       = 64 << 20
)

// recovered waits until the process is back near its baseline, and checks
// that good requests are still served.
func (e *env) recovered() {
	e.t.Helper()
	e.h1.CloseIdleConnections()
	e.h2c.CloseIdleConnections()
	opstest.CheckFor(e.t, 20*time.Second, 20*time.Millisecond, func() error {
		now := measure()
		if now.goroutines > e.base.goroutines+goroutineSlack {
			return fmt.Errorf("%d goroutines, baseline %d", now.goroutines, e.base.goroutines)
		}
		if now.rss > e.base.rss+rssSlack {
			return fmt.Errorf("RSS %d MB, baseline %d MB", now.rss>>20, e.base.rss>>20)
		}
		return nil
	})
	e.mustServe()
}

// counter reads a metric of the gateway's set (0 when it does not exist).
func (e *env) counter(name string) float64 {
	var buf bytes.Buffer
	e.set.WritePrometheus(&buf)
	for l := range strings.Lines(buf.String()) {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// dial opens a TCP connection to the gateway, closed by the test's end.
func (e *env) dial() net.Conn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// closedByPeer reports whether err says the peer closed or reset the
// connection (as opposed to a local timeout).
func closedByPeer(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}
