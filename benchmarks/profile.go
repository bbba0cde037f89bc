package benchmarks

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
)

// profiler fetches CPU profiles from the ops listeners of the gateway and
// the quotes worker during a run's window, and profiles this process.
type profiler struct {
	s    *suite
	name string
	// tag prefixes the children's names: "slow-" profiles the slowed
	// pipeline; secs is the profile's length (default the run's Duration).
	tag  string
	secs int
	// gateway, when set, names the gateway child profiled instead of
	// tag+"gateway" (the edge scenario's gateways are named by system).
	gateway string
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []error
	self    *os.File // this process's profile, while it runs
}

func (s *suite) profiler(name string) *profiler {
	return &profiler{s: s, name: name}
}

func (p *profiler) hook(start bool) {
	if !start {
		p.stopSelf()
		return
	}
	p.startSelf()
	secs := p.secs
	if secs == 0 {
		secs = int(p.s.o.Duration.Seconds())
	}
	if secs < 1 {
		secs = 1
	}
	for _, c := range p.s.children {
		gw := p.tag + "gateway"
		if p.gateway != "" {
			gw = p.gateway
		}
		if c.ops == "" || (c.name != gw && c.name != p.tag+"worker-quotes") {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.ops, secs)
			path := filepath.Join(p.s.o.ProfileDir, fmt.Sprintf("%s-%s.pprof", c.name, p.name))
			if err := fetch(url, path); err != nil {
				p.fail(fmt.Errorf("%s: %w", c.name, err))
			}
		}()
	}
}

// startSelf profiles this process (the load generator) over the window.
func (p *profiler) startSelf() {
	path := filepath.Join(p.s.o.ProfileDir, fmt.Sprintf("loadgen-%s.pprof", p.name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.fail(err)
		return
	}
	f, err := os.Create(path)
	if err != nil {
		p.fail(err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		p.fail(err)
		return
	}
	p.self = f
}

func (p *profiler) stopSelf() {
	if p.self == nil {
		return
	}
	pprof.StopCPUProfile()
	if err := p.self.Close(); err != nil {
		p.fail(err)
	}
	p.self = nil
}

func (p *profiler) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func (p *profiler) wait() error {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) > 0 {
		return p.errs[0]
	}
	return nil
}

func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
