package opstest

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy for fault tests: it forwards each connection it
// accepts to its target, and the test can close the connections it holds
// and refuse new ones (a process killed, a network cut), then let them
// through again, to the same target or another (a process restarted).
type Proxy struct {
	ln net.Listener

	mu       sync.Mutex
	target   string
	refusing bool
	conns    map[*proxied]struct{}
}

// proxied is one forwarded connection: in from the client, out to the
// target.
type proxied struct{ in, out net.Conn }

func (pc *proxied) close() {
	pc.in.Close()
	pc.out.Close()
}

// NewProxy starts a proxy on a free loopback port to target (host:port;
// "" refuses every connection until [Proxy.SetTarget]). It is closed, with
// every connection it forwards, by t.Cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[*proxied]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget sets where new connections are forwarded; those forwarded
// already keep their target.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// Refuse, on, closes every new connection as soon as it is accepted
// (connection refused, as far as the client can tell); off lets them
// through again.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refusing = on
	p.mu.Unlock()
}

// CloseAll closes every connection the proxy forwards, both sides.
func (p *Proxy) CloseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		pc.close()
	}
}

// Cut refuses new connections and closes those forwarded: what a client
// sees of a process killed.
func (p *Proxy) Cut() {
	p.Refuse(true)
	p.CloseAll()
}

// closeFrom closes the forwarded connections whose side to the target has
// local port port (the remote port the target reports for it).
func (p *Proxy) closeFrom(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		if a, ok := pc.out.LocalAddr().(*net.TCPAddr); ok && a.Port == port {
			pc.close()
		}
	}
}

func (p *Proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(in)
	}
}

// forward dials the target for in, unless the proxy refuses, and copies
// both ways until either side closes, then closes both.
func (p *Proxy) forward(in net.Conn) {
	p.mu.Lock()
	target, refusing := p.target, p.refusing
	p.mu.Unlock()
	if refusing || target == "" {
		in.Close()
		return
	}
	out, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	pc := &proxied{in: in, out: out}
	p.mu.Lock()
	if p.refusing { // cut while dialling
		p.mu.Unlock()
		pc.close()
		return
	}
	p.conns[pc] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go copyConn(out, in, done)
	go copyConn(in, out, done)
	<-done
	pc.close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// copyConn copies src to dst until either fails, then signals done.
func copyConn(dst, src net.Conn, done chan<- struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	done <- struct{}{}
}
