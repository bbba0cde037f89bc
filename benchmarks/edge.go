package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

// The edge scenario's systems: the sluice pipeline's workers with a
// gateway of their own on each HTTP/2 server (--http2-server fast or std),
// and nginx answering `return 202`.
const (
	sysSluiceFast = "sluice-h2fast"
	sysSluiceStd  = "sluice-h2std"
	sysNginx      = "nginx"
)

// errNoNginx skips the nginx row where nginx is not installed.
var errNoNginx = errors.New("nginx is not installed (apt-get install nginx-light): its row is skipped")

func init() {
	for name, v := range map[string]variant{
		"nginx-plain":       {label: "nginx: return 202 (workers = cores, keepalive_requests raised)", system: sysNginx, payload: singleJSON},
		"edge-publish-fast": {label: "sluice fast edge: 1 event, 202", system: sysSluiceFast, payload: singleJSON, e2e: true},
		"edge-publish-std":  {label: "sluice std edge (net/http): 1 event, 202", system: sysSluiceStd, payload: singleJSON, e2e: true},
		"edge-request-fast": {label: "sluice fast edge: 1 event, Prefer", system: sysSluiceFast, payload: singleSync},
		"edge-request-std":  {label: "sluice std edge (net/http): 1 event, Prefer", system: sysSluiceStd, payload: singleSync},
		"edge-batch-fast":   {label: "sluice fast edge: 100 events NDJSON, 202", system: sysSluiceFast, payload: batchNDJ, e2e: true},
		"edge-batch-std":    {label: "sluice std edge (net/http): 100 events NDJSON, 202", system: sysSluiceStd, payload: batchNDJ, e2e: true},
	} {
		v.name = name
		variants[name] = v
	}
	scenarioDefs[ScenarioEdge] = scenarioDef{
		title: "edge: the fast HTTP/2 edge against net/http's and nginx",
		description: "The same pipeline (core delivery) behind two gateways, one per HTTP/2 server (--http2-server fast: " +
			"gateway/h2edge's frame loop, the events route without a goroutine per stream; std: net/http's server), next to " +
			"the trivial net/http server and nginx answering `return 202` (as many workers as cores, keepalive_requests " +
			"raised; skipped where nginx is not installed). Publish and request are reported against the trivial server, " +
			"each batch row against the std gateway's; the notes give fast ÷ nginx and fast ÷ std.",
		order: []string{"baseline-plain", "nginx-plain", "edge-publish-fast", "edge-publish-std",
			"edge-request-fast", "edge-request-std", "edge-batch-fast", "edge-batch-std"},
		refs: map[string]string{"nginx-plain": "baseline-plain", "edge-publish-fast": "baseline-plain",
			"edge-publish-std": "baseline-plain", "edge-request-fast": "baseline-plain", "edge-request-std": "baseline-plain",
			"edge-batch-fast": "edge-batch-std"},
	}
}

// startEdgeGateway starts a gateway on the sluice pipeline's workers with
// the given HTTP/2 server.
func (s *suite) startEdgeGateway(ctx context.Context, name, server string) (*system, error) {
	base, err := s.ensureSystem(ctx, sysSluice)
	if err != nil {
		return nil, err
	}
	gw, err := s.startGateway(ctx, s.nats.addr, base.prefix, name+"-", "core", "--http2-server", server)
	if err != nil {
		return nil, err
	}
	procs := []*child{gw}
	for _, c := range base.procs {
		if c != base.edge {
			procs = append(procs, c)
		}
	}
	return &system{name: name, prefix: base.prefix, url: s.o.Proto.Scheme() + "://" + gw.addr, edge: gw, procs: procs}, nil
}

// nginxConf is nginx's configuration: `return 202` for every request over
// h2c with prior knowledge (or h2 over TLS), one worker per core, and
// keepalive_requests raised (by default nginx closes an HTTP/2 connection
// after 1,000 requests, which the generator counts as failures).
const nginxConf = `worker_processes %d;
pid %s;
error_log %s warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;
    server {
        listen %s %s;
%s
        location / { return 202; }
    }
}
`

// nginxPath finds the nginx binary (Debian installs it in /usr/sbin).
func nginxPath() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errNoNginx
}

// startNginx starts nginx in the foreground (daemon off), its workers its
// children: the CPU sampler counts the process tree.
func (s *suite) startNginx(ctx context.Context) (*system, error) {
	bin, err := nginxPath()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.o.WorkDir, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	listen, tlsLines := "http2", ""
	if s.o.Proto == loadgen.ProtoH2 {
		if _, err := s.tlsArgs(); err != nil {
			return nil, err
		}
		listen = "ssl http2"
		tlsLines = fmt.Sprintf("        ssl_certificate %s;\n        ssl_certificate_key %s;", s.certFile, s.keyFile)
	}
	tmp := filepath.Join(dir, "tmp")
	conf := fmt.Sprintf(nginxConf, runtime.NumCPU(), filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"),
		tmp, tmp, tmp, tmp, tmp, addr, listen, tlsLines)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	c, err := s.startCmd("nginx", RoleEdge, exec.Command(bin, "-p", dir, "-c", confPath, "-g", "daemon off;"))
	if err != nil {
		return nil, err
	}
	c.tree, c.addr = true, addr
	s.track(c)
	if err := waitListening(ctx, c, addr); err != nil {
		return nil, err
	}
	return &system{name: sysNginx, url: s.o.Proto.Scheme() + "://" + addr, procs: []*child{c}, edge: c}, nil
}

// waitListening waits until addr accepts connections.
func waitListening(ctx context.Context, c *child, addr string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", c.name, c.err, c.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not listening within %v", c.name, addr, readyTimeout)
		}
	}
}

// treeCPU is cpuTime of pid and of its descendants (nginx's workers).
func treeCPU(pid int) (time.Duration, error) {
	total, err := cpuTime(pid)
	if err != nil {
		return 0, err
	}
	for _, k := range childPIDs(pid) {
		if d, err := treeCPU(k); err == nil {
			total += d
		}
	}
	return total, nil
}

// childPIDs lists the children of pid, from /proc/<pid>/task/*/children.
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// edgeNotes are the edge scenario's derived figures, against the targets
// of issue #16.
func edgeNotes(sr *ScenarioResult, skipped []string) []string {
	var notes []string
	ratio := func(a, b string) (float64, bool) {
		ra, rb := findRow(sr.Rows, a), findRow(sr.Rows, b)
		if ra.EventsPerSec <= 0 || rb.EventsPerSec <= 0 {
			return 0, false
		}
		return ra.EventsPerSec / rb.EventsPerSec, true
	}
	for _, c := range []struct {
		a, b, what string
		target     float64
	}{
		{"edge-publish-fast", "baseline-plain", "fast publish ÷ trivial net/http", 2.5},
		{"edge-publish-fast", "nginx-plain", "fast publish ÷ nginx", 1.0},
		{"edge-publish-fast", "edge-publish-std", "fast publish ÷ std publish", 0},
		{"edge-request-fast", "baseline-plain", "fast request ÷ trivial net/http", 2.0},
		{"edge-request-fast", "edge-request-std", "fast request ÷ std request", 0},
		{"edge-batch-fast", "edge-batch-std", "fast batch events/s ÷ std batch", 1.5},
	} {
		r, ok := ratio(c.a, c.b)
		if !ok {
			continue
		}
		line := fmt.Sprintf("%s: %.2f×", c.what, r)
		if c.target > 0 {
			verdict := "met"
			if r < c.target {
				verdict = "NOT met"
			}
			line += fmt.Sprintf(" (target ≥ %.1f×: %s)", c.target, verdict)
		}
		notes = append(notes, line)
	}
	if f, n := findRow(sr.Rows, "edge-publish-fast"), findRow(sr.Rows, "nginx-plain"); f.Rounds > 0 && n.Rounds > 0 {
		notes = append(notes, fmt.Sprintf("CPU per single-event request: fast gateway %.2f µs (gateway + workers + NATS %.2f µs), nginx %.2f µs",
			f.CPU[RoleEdge], f.SystemCPU, n.CPU[RoleEdge]))
	}
	return append(notes, skipped...)
}
