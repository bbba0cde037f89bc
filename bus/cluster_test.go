package bus_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// runCluster starts three JetStream servers routed into one cluster in the
// test process and returns their client URLs, comma-separated; they are
// shut down by t.Cleanup.
func runCluster(t *testing.T) string {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	var urls string
	for i, p := range ports {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "bus-test", Host: "127.0.0.1", Port: p},
			Routes:     server.RoutesFromStr(routes[0] + "," + routes[1] + "," + routes[2]),
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("server %d: %v", i+1, err)
		}
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("server %d not ready", i+1)
		}
		if i > 0 {
			urls += ","
		}
		urls += s.ClientURL()
	}
	return urls
}

func TestApplyR3OnACluster(t *testing.T) {
	e := connect(t, runCluster(t))
	// Apply waits out the meta leader's election by itself.
	got := e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), Replicas: 3})
	for _, a := range got {
		if a.Action != bus.Created {
			t.Fatalf("first apply: %+v", got)
		}
	}
	opstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		ci := e.streamInfo(t, "t1-ingest").Cluster
		if ci == nil || ci.Leader == "" || len(ci.Replicas) != 2 {
			return fmt.Errorf("ingest cluster info %+v: want a leader and 2 replicas", ci)
		}
		return nil
	})
	p, err := bus.NewDurable(e.nc, bus.DurableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", nats.Header{bus.HeaderMsgID: []string{"gw/1"}}, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := ack.Wait(context.Background()); err != nil || rc.Sequence != 1 {
		t.Fatalf("R3 publish = %+v, %v; want stored at 1", rc, err)
	}
	for _, a := range e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), Replicas: 3}) {
		if a.Action != bus.Unchanged {
			t.Fatalf("second apply of %s: %+v", a.Stream, a)
		}
	}
	// A component left at its default (0: keep) does not bring the R3
	// streams back to one replica.
	for _, a := range e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}) {
		if a.Action != bus.Unchanged {
			t.Fatalf("apply with replicas left 0, of %s: %+v", a.Stream, a)
		}
	}
	if r := e.streamInfo(t, "t1-enriched").Config.Replicas; r != 3 {
		t.Fatalf("replicas after an apply that left them 0 = %d, want 3 kept", r)
	}
	got = e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), Replicas: 1})
	if got[0].Action != bus.Updated || got[0].Changed[0] != "replicas" {
		t.Fatalf("apply R1 over R3: %+v", got[0])
	}
	if r := e.streamInfo(t, "t1-ingest").Config.Replicas; r != 1 {
		t.Fatalf("replicas after scale down = %d", r)
	}
}
