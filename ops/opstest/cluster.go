package opstest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of NATS servers in the test process, for
// fault tests: a node can be stopped and started again with its store and
// ports ([Cluster.Stop], [Cluster.Start]), or cut off from the other nodes
// ([Cluster.Partition], [Cluster.Heal]).
//
// Every route connection into a node passes through a TCP proxy in front of
// its cluster port (each node advertises its proxy, so gossiped routes take
// it too): a partition closes the proxied connections of the node's routes,
// both ways, and refuses new route connections until Heal. The clients of
// a cut node stay connected to it, as clients of a node that lost its
// routes in a real network would until their pings fail: it answers them,
// but holds no quorum.
type Cluster struct {
	t     testing.TB
	name  string
	nodes []*clusterNode
}

// clusterNode is one server of a Cluster and the proxy before its routes.
type clusterNode struct {
	name       string
	store      string
	clientPort int // fixed at the first start, kept across restarts
	routePort  int
	proxy      *Proxy

	mu  sync.Mutex
	srv *server.Server // nil while stopped
}

// RunCluster starts n JetStream servers (named n1, n2, ...) routed into
// one cluster, each storing in its own t.TempDir(), and waits until the
// cluster has a JetStream meta leader that every node follows. Servers and
// proxies are shut down by t.Cleanup.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: "opstest"}
	for i := range n {
		p := NewProxy(t, "")
		c.nodes = append(c.nodes, &clusterNode{name: fmt.Sprintf("n%d", i+1), store: t.TempDir(),
			clientPort: server.RANDOM_PORT, routePort: server.RANDOM_PORT, proxy: p})
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Stop(i)
		}
	})
	for i := range c.nodes {
		c.Start(i)
	}
	c.WaitReady(30 * time.Second)
	return c
}

// options are node i's server options: the ports of its first start, its
// proxy as the route address it advertises, the others' proxies as routes.
func (c *Cluster) options(i int) *server.Options {
	nd := c.nodes[i]
	var routes []string
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, "nats-route://"+o.proxy.Addr())
		}
	}
	return &server.Options{
		ServerName: nd.name,
		Host:       "127.0.0.1",
		Port:       nd.clientPort,
		JetStream:  true,
		StoreDir:   nd.store,
		NoSigs:     true,
		NoLog:      true,
		Cluster: server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: nd.routePort,
			Advertise: nd.proxy.Addr()},
		Routes: server.RoutesFromStr(strings.Join(routes, ",")),
	}
}

// Start starts node i, again with its store and ports after a Stop, and
// waits until it accepts clients. It does nothing to a running node.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.srv != nil {
		return
	}
	s, err := server.NewServer(c.options(i))
	if err != nil {
		c.t.Fatalf("node %s: %v", nd.name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		c.t.Fatalf("node %s not ready within 30s", nd.name)
	}
	nd.clientPort = s.Addr().(*net.TCPAddr).Port
	nd.routePort = s.ClusterAddr().Port
	nd.proxy.SetTarget(s.ClusterAddr().String())
	nd.srv = s
}

// Stop shuts node i down (its clients are disconnected and reconnect to
// the others) and waits until it has. It does nothing to a stopped node.
func (c *Cluster) Stop(i int) {
	nd := c.nodes[i]
	nd.mu.Lock()
	s := nd.srv
	nd.srv = nil
	nd.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Server returns node i's server, nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.srv
}

// Name returns node i's server name.
func (c *Cluster) Name(i int) string { return c.nodes[i].name }

// Index returns the index of the node named name, -1 for none.
func (c *Cluster) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.name == name {
			return i
		}
	}
	return -1
}

// URL returns node i's client URL, the same across restarts.
func (c *Cluster) URL(i int) string {
	return "nats://127.0.0.1:" + strconv.Itoa(c.nodes[i].clientPort)
}

// URLs returns every node's client URL, comma-separated.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// Partition cuts node i off the others: its route connections are closed
// both ways and no route connection is accepted by any node's proxy until
// [Cluster.Heal] (the routes between the other nodes stay up). It returns
// once no running node has a route to or from node i.
func (c *Cluster) Partition(i int) {
	c.t.Helper()
	for _, nd := range c.nodes {
		nd.proxy.Refuse(true)
	}
	victim := c.nodes[i].name
	CheckFor(c.t, 10*time.Second, 20*time.Millisecond, func() error {
		// Into node i: every connection through its proxy. Out of node i:
		// those through the others' proxies, found by the port their proxy
		// dialled from, the remote port the node reports (whichever side
		// Routez says solicited the route: a pooled route may report
		// both).
		c.nodes[i].proxy.CloseAll()
		for j, nd := range c.nodes {
			s := c.Server(j)
			if j == i || s == nil {
				continue
			}
			rz, err := s.Routez(nil)
			if err != nil {
				return err
			}
			for _, r := range rz.Routes {
				if r.RemoteName == victim {
					nd.proxy.closeFrom(r.Port)
				}
			}
		}
		return c.cutOff(i)
	})
}

// cutOff reports nil once no running node has a route to or from node i.
func (c *Cluster) cutOff(i int) error {
	if s := c.Server(i); s != nil {
		rz, err := s.Routez(nil)
		if err != nil {
			return err
		}
		if len(rz.Routes) > 0 {
			var rs []string
			for _, r := range rz.Routes {
				rs = append(rs, fmt.Sprintf("%s at %s:%d (solicited %v)", r.RemoteName, r.IP, r.Port, r.DidSolicit))
			}
			return fmt.Errorf("%s still has %d routes: %s", c.nodes[i].name, len(rs), strings.Join(rs, ", "))
		}
	}
	for j := range c.nodes {
		s := c.Server(j)
		if j == i || s == nil {
			continue
		}
		rz, err := s.Routez(nil)
		if err != nil {
			return err
		}
		for _, r := range rz.Routes {
			if r.RemoteName == c.nodes[i].name {
				return fmt.Errorf("%s still has a route to %s", c.nodes[j].name, r.RemoteName)
			}
		}
	}
	return nil
}

// Heal lets route connections through again; the nodes reconnect their
// configured routes by themselves (see [Cluster.WaitReady]).
func (c *Cluster) Heal() {
	for _, nd := range c.nodes {
		nd.proxy.Refuse(false)
	}
}

// WaitReady waits until every running node has a route to every other
// running node, one of them is the JetStream meta leader, and every
// running node's JetStream is current with it.
//
// A node that rejoins after [Cluster.Partition] may depose the meta
// leader a second or so after this returns (it campaigned while cut off):
// measured without load, the cluster then had no meta leader from 1 s to
// 6-8 s after the heal, and JetStream API requests that need one (stream
// and consumer creation) got 503 "JetStream system temporarily
// unavailable", while publishes and deliveries on existing streams went on.
func (c *Cluster) WaitReady(within time.Duration) {
	c.t.Helper()
	CheckFor(c.t, within, 25*time.Millisecond, func() error {
		running := map[string]bool{}
		for i, nd := range c.nodes {
			if c.Server(i) != nil {
				running[nd.name] = true
			}
		}
		leader := false
		for i, nd := range c.nodes {
			s := c.Server(i)
			if s == nil {
				continue
			}
			rz, err := s.Routez(nil)
			if err != nil {
				return err
			}
			routed := map[string]bool{}
			for _, r := range rz.Routes {
				routed[r.RemoteName] = true
			}
			for name := range running {
				if name != nd.name && !routed[name] {
					return fmt.Errorf("%s has no route to %s", nd.name, name)
				}
			}
			if !s.JetStreamIsCurrent() {
				return fmt.Errorf("%s: JetStream not current", nd.name)
			}
			leader = leader || s.JetStreamIsLeader()
		}
		if !leader {
			return fmt.Errorf("no JetStream meta leader")
		}
		return nil
	})
}
