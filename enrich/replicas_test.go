package enrich_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sluice-dev/sluice/enrich"
)

// TestUploadKeepsReplicas: reloading reference data without saying how many
// copies keeps a replicated bucket's copies (it shrank the bucket to one on
// a three-node cluster); a new bucket gets one, a negative count is refused.
func TestUploadKeepsReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster")
	}
	js := connectJetStream(t, runCluster(t, 3)[0])
	replicas := func(bucket string) int {
		t.Helper()
		s, err := js.Stream(t.Context(), "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Replicas
	}
	upload := func(bucket string, n int) error {
		// The cluster elects its metadata leader in its own time.
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			if _, err = enrich.UploadReplicated(t.Context(), js, bucket, enrich.Sample(), n); err == nil {
				return nil
			}
		}
		return err
	}
	if err := upload("kept", 3); err != nil {
		t.Fatal(err)
	}
	if err := upload("kept", 0); err != nil {
		t.Fatal(err)
	}
	if got := replicas("kept"); got != 3 {
		t.Errorf("reloaded without a count: %d replicas, want the bucket's 3", got)
	}
	if err := upload("fresh", 0); err != nil {
		t.Fatal(err)
	}
	if got := replicas("fresh"); got != 1 {
		t.Errorf("new bucket: %d replicas, want 1", got)
	}
	if _, err := enrich.UploadReplicated(t.Context(), js, "negative", enrich.Sample(), -1); err == nil {
		t.Error("-1 replicas accepted")
	}
}

// runCluster starts n JetStream servers routed to each other on loopback
// and returns their client URLs.
func runCluster(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]int, n)
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
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	urls := make([]string, n)
	for i := range n {
		opts := &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "refdata-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ","))}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server %d not ready", i)
		}
		urls[i] = s.ClientURL()
	}
	return urls
}
