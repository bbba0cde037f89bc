package ops_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops"
)

func ExampleEnvName() {
	fmt.Println(ops.EnvName("ops-listen"))
	// Output: SLUICE_OPS_LISTEN
}

func ExampleApplyEnv() {
	os.Setenv("SLUICE_EXAMPLE_BATCH", "512")
	defer os.Unsetenv("SLUICE_EXAMPLE_BATCH")

	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	batch := fs.Int("example-batch", 64, "events per batch")
	fs.Usage = ops.Usage(fs, "gateway", "Runs the HTTP/2 gateway.")
	if err := fs.Parse(os.Args[:0]); err != nil {
		return
	}
	if err := ops.ApplyEnv(fs); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(*batch)
	// Output: 512
}

func ExampleNewServer() {
	s, err := ops.NewServer(ops.ServerOptions{
		Addr:  "127.0.0.1:0",
		Ready: map[string]ops.Check{"nats": func() error { return nil }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer s.Shutdown(context.Background())

	resp, err := http.Get("http://" + s.Addr() + "/readyz")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	// Output: 200 nats: ok
}

func ExampleRunNATS() {
	s, err := ops.RunNATS(ops.NATSOptions{Port: server.RANDOM_PORT})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
	}()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	fmt.Println(nc.IsConnected())
	// Output: true
}
