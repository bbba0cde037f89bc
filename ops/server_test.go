package ops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// modes are the protocols every handler test runs over.
var modes = []struct {
	name  string
	proto int
}{{"h1", 1}, {"h2", 2}}

// startServer starts an ops server on a free port, stopped by t.Cleanup,
// and returns it with its base URL.
func startServer(t *testing.T, opts ops.ServerOptions) (*ops.Server, string) {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	s, err := ops.NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, "http://" + s.Addr()
}

// client returns an HTTP client speaking HTTP/1.1 (proto 1) or unencrypted
// HTTP/2 with prior knowledge (proto 2).
func client(t *testing.T, proto int) *http.Client {
	t.Helper()
	var p http.Protocols
	if proto == 2 {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get fetches url and returns the status and body; it checks the protocol.
func get(t *testing.T, c *http.Client, proto int, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	if resp.ProtoMajor != proto {
		t.Fatalf("GET %s answered over %s, want HTTP/%d", url, resp.Proto, proto)
	}
	return resp.StatusCode, string(body)
}

func TestServerMetrics(t *testing.T) {
	set := metrics.NewSet()
	set.NewCounter("sluice_ops_test_requests_total").Add(7)
	_, base := startServer(t, ops.ServerOptions{Metrics: []*metrics.Set{set}})
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			code, body := get(t, client(t, m.proto), m.proto, base+"/metrics")
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			for _, want := range []string{"sluice_ops_test_requests_total 7\n", "process_cpu_seconds_total"} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
		})
	}
}

func TestServerReadyzFlips(t *testing.T) {
	var ready atomic.Bool
	s, base := startServer(t, ops.ServerOptions{Ready: map[string]ops.Check{
		"nats": func() error { return nil },
		"store": func() error {
			if !ready.Load() {
				return errors.New("bucket not loaded")
			}
			return nil
		},
	}})
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ready.Store(false)
			c := client(t, m.proto)
			code, body := get(t, c, m.proto, base+"/readyz")
			if want := "nats: ok\nstore: bucket not loaded\n"; code != http.StatusServiceUnavailable || body != want {
				t.Fatalf("/readyz = %d %q, want 503 %q", code, body, want)
			}
			ready.Store(true)
			opstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				if code, body := get(t, c, m.proto, base+"/readyz"); code != http.StatusOK {
					return fmt.Errorf("/readyz = %d %q", code, body)
				}
				return nil
			})
		})
	}
	s.AddReady("late", func() error { return errors.New("warming up") })
	c := client(t, 1)
	if code, body := get(t, c, 1, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "late: warming up\n") {
		t.Fatalf("after AddReady /readyz = %d %q", code, body)
	}
	s.AddReady("late", nil)
	if code, body := get(t, c, 1, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("after removing the check /readyz = %d %q", code, body)
	}
}

func TestServerHealthz(t *testing.T) {
	var broken atomic.Bool
	_, base := startServer(t, ops.ServerOptions{Live: map[string]ops.Check{
		"loop": func() error {
			if broken.Load() {
				return errors.New("stuck")
			}
			return nil
		},
	}})
	c := client(t, 1)
	if code, body := get(t, c, 1, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz = %d %q, want 200 ok", code, body)
	}
	broken.Store(true)
	if code, body := get(t, c, 1, base+"/healthz"); code != http.StatusServiceUnavailable || body != "loop: stuck\n" {
		t.Fatalf("/healthz = %d %q, want 503 listing the failure", code, body)
	}
}

func TestServerPprof(t *testing.T) {
	_, base := startServer(t, ops.ServerOptions{})
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			c := client(t, m.proto)
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
				if code, _ := get(t, c, m.proto, base+path); code != http.StatusOK {
					t.Errorf("%s status %d, want 200", path, code)
				}
			}
		})
	}
}

// registerDefault registers a test route on http.DefaultServeMux once per
// process, however often the test runs.
var registerDefault sync.Once

func TestServerOwnMux(t *testing.T) {
	registerDefault.Do(func() {
		http.DefaultServeMux.HandleFunc("/ops-test-default-mux", func(http.ResponseWriter, *http.Request) {})
	})
	_, base := startServer(t, ops.ServerOptions{})
	if code, _ := get(t, client(t, 1), 1, base+"/ops-test-default-mux"); code != http.StatusNotFound {
		t.Errorf("route of http.DefaultServeMux answered %d, want 404", code)
	}
}

func TestServerLifecycle(t *testing.T) {
	if _, err := ops.NewServer(ops.ServerOptions{Addr: "no-port"}); err == nil {
		t.Error("NewServer accepted an address without a port")
	}
	if _, err := ops.NewServer(ops.ServerOptions{Ready: map[string]ops.Check{"x": nil}}); err == nil {
		t.Error("NewServer accepted a nil check")
	}
	s, err := ops.NewServer(ops.ServerOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if s.Addr() != "" {
		t.Errorf("Addr before Start = %q, want empty", s.Addr())
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := s.Start(); !errors.Is(err, ops.ErrServerStarted) {
		t.Errorf("second Start = %v, want ErrServerStarted", err)
	}
	addr := s.Addr()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("server still answers after Shutdown")
	}
}
