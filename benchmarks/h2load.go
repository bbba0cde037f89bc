package benchmarks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

// H2LoadOff, as Options.H2Load, turns the h2load cross-check off.
const H2LoadOff = "none"

// H2Load is an h2load run beside one of the suite's closed-loop
// throughput rows, in the same suite run, against the same server: the
// same protocol, connections × streams, path and headers, and one of the
// row's bodies sent every time (h2load cannot vary it). Its rate checks
// the suite's own generator: a generator that took the machine from the
// server would show a lower rate than h2load's.
type H2Load struct {
	// Command is the command line, the body file named by its base name.
	Command  string        `json:"command"`
	Warmup   time.Duration `json:"warmup_ns"`
	Duration time.Duration `json:"duration_ns"`
	// ReqPerSec is the rate of 2xx answers over h2load's measured window;
	// Requests counts the requests done in it, of which Failed got no
	// answer and Status counts the others by class ("2xx" ... "5xx").
	ReqPerSec float64           `json:"req_per_sec"`
	Requests  uint64            `json:"requests"`
	Failed    uint64            `json:"failed"`
	Status    map[string]uint64 `json:"status"`
	// CPU is h2load's own CPU time (user + system) per request, in
	// microseconds: its whole CPU time over the requests of its window and
	// of its warm-up, taken to go at the window's rate.
	CPU float64 `json:"cpu_us_per_request"`
	// Err says why the run gave no figures.
	Err string `json:"error,omitempty"`
}

// h2loadSpec is the shape of one h2load run.
type h2loadSpec struct {
	url            string
	proto          loadgen.Proto
	conns, streams int
	header         http.Header
	bodyFile       string
	warmup, dur    time.Duration
}

// args are h2load's arguments for s. HTTP/1.1 carries one request at a
// time per connection (no pipelining), as the suite's generator does, so
// its shape is conns × streams connections of one stream.
func (s h2loadSpec) args() []string {
	c, m := s.conns, s.streams
	var args []string
	if s.proto == loadgen.ProtoH1 {
		c, m = s.conns*s.streams, 1
		args = append(args, "--h1")
	}
	args = append(args, "-c", strconv.Itoa(c), "-m", strconv.Itoa(m), "-t", "1",
		"-D", strconv.FormatInt(s.dur.Milliseconds(), 10)+"ms",
		"--warm-up-time", strconv.FormatInt(s.warmup.Milliseconds(), 10)+"ms", "-d", s.bodyFile)
	for _, k := range slices.Sorted(maps.Keys(s.header)) {
		for _, v := range s.header[k] {
			args = append(args, "-H", strings.ToLower(k)+": "+v)
		}
	}
	return append(args, s.url)
}

// runH2Load runs h2load (the binary at path) and reads its summary.
func runH2Load(ctx context.Context, path string, spec h2loadSpec) *H2Load {
	args := spec.args()
	h := &H2Load{Warmup: spec.warmup, Duration: spec.dur,
		Command: "h2load " + strings.ReplaceAll(strings.Join(quoteArgs(args), " "), filepath.Dir(spec.bodyFile)+"/", "")}
	ctx, cancel := context.WithTimeout(ctx, spec.warmup+spec.dur+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		h.Err = fmt.Sprintf("%v: %s", err, lastLine(out.String()))
		return h
	}
	if err := h.parse(out.String()); err != nil {
		h.Err = err.Error()
		return h
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if total := float64(h.Requests) * float64(spec.warmup+spec.dur) / float64(spec.dur); total > 0 {
		h.CPU = float64(cpu.Microseconds()) / total
	}
	return h
}

var (
	h2loadFinished = regexp.MustCompile(`finished in ([0-9.]+)(m?s)`)
	h2loadRequests = regexp.MustCompile(`requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatus   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// parse reads h2load's summary lines.
func (h *H2Load) parse(out string) error {
	fin := h2loadFinished.FindStringSubmatch(out)
	req := h2loadRequests.FindStringSubmatch(out)
	st := h2loadStatus.FindStringSubmatch(out)
	if fin == nil || req == nil || st == nil {
		return fmt.Errorf("h2load's summary not found: %s", lastLine(out))
	}
	secs, _ := strconv.ParseFloat(fin[1], 64)
	if fin[2] == "ms" {
		secs /= 1000
	}
	n := func(s string) uint64 {
		v, _ := strconv.ParseUint(s, 10, 64)
		return v
	}
	h.Requests = n(req[1])
	h.Failed = n(req[2]) + n(req[3]) + n(req[4])
	h.Status = map[string]uint64{}
	for i, class := range []string{"2xx", "3xx", "4xx", "5xx"} {
		if v := n(st[i+1]); v > 0 {
			h.Status[class] = v
		}
	}
	if secs <= 0 {
		return errors.New("h2load measured no time")
	}
	h.ReqPerSec = float64(h.Status["2xx"]) / secs
	return nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ;=") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// findH2Load resolves Options.H2Load: the path of h2load, or "" with the
// reason the cross-check does not run.
func findH2Load(opt string) (path, why string) {
	if opt == H2LoadOff {
		return "", "turned off (--h2load " + H2LoadOff + ")"
	}
	path, err := exec.LookPath(orDefault(opt, "h2load"))
	if err != nil {
		return "", "h2load not found (Debian: apt-get install nghttp2-client): the throughput rows are not cross-checked"
	}
	return path, ""
}

// h2loadVersion returns the first line of `h2load --version`.
func h2loadVersion(path string) string {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "h2load"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// crossCheck runs h2load against the system of v, shaped as v's closed-loop
// runs, once per variant and suite run; rows of v in any scenario show it.
func (s *suite) crossCheck(ctx context.Context, v variant) {
	if s.h2load == "" || s.h2loads[v.name] != nil {
		return
	}
	sys, ok := s.systems[v.system]
	if !ok {
		return
	}
	spec, err := s.h2loadSpec(v, sys)
	if err != nil {
		s.h2loads[v.name] = &H2Load{Err: err.Error()}
		return
	}
	h := runH2Load(ctx, s.h2load, spec)
	if s.o.Progress != nil {
		fmt.Fprintf(s.o.Progress, "h2load %s: %s 2xx/s, %.2f µs CPU/request %s\n", v.name, thousands(h.ReqPerSec), h.CPU, h.Err)
	}
	if h.Err != "" {
		s.log.Warn("h2load", "variant", v.name, "err", h.Err)
	}
	s.h2loads[v.name] = h
}

// h2loadSpec writes the body h2load sends for v: the first of v's bodies
// whose events are all valid, a quote where there is one.
func (s *suite) h2loadSpec(v variant, sys *system) (h2loadSpec, error) {
	po := s.payloadOptions(v)
	po.InvalidShare = 0
	p, err := loadgen.NewPayloads(po)
	if err != nil {
		return h2loadSpec{}, err
	}
	kind, body, header := p.Sample(0)
	for i := range uint64(64) {
		if k, b, h := p.Sample(i); k.String() == "quote" {
			kind, body, header = k, b, h
			break
		}
	}
	file := filepath.Join(s.o.WorkDir, "h2load-"+v.name+".body")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		return h2loadSpec{}, err
	}
	header = header.Clone()
	if po.Format == loadgen.FormatCEBinary {
		header.Set("Ce-Id", "h2load-"+v.name) // one id for every request: h2load cannot vary it
	}
	return h2loadSpec{url: sys.url + "/v1/events/" + kind.String(), proto: s.o.Proto, conns: s.o.Conns,
		streams: s.o.Streams, header: header, bodyFile: file, warmup: s.o.Warmup, dur: s.o.H2LoadDuration}, nil
}
