package gateway

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops"
)

// natsChildEnv makes the test binary a NATS server process for the
// benchmarks (see runNATSProcess).
const natsChildEnv = "SLUICE_GATEWAY_TEST_NATS_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(natsChildEnv) != "" {
		os.Exit(natsChild())
	}
	os.Exit(m.Run())
}

// natsChild serves NATS on a free port with a subscriber draining every
// ingest subject, as a worker group would, prints the client URL and runs
// until its standard input closes.
func natsChild() int {
	o := ops.NATSOptions{Port: server.RANDOM_PORT}
	if os.Getenv(natsChildEnv) == "js" { // durable benchmarks: JetStream on
		dir, err := os.MkdirTemp("", "sluice-bench-js-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		o.JetStream, o.StoreDir = true, dir
	}
	s, err := ops.RunNATS(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Shutdown()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer nc.Close()
	sub, err := nc.Subscribe("*.ingest.>", func(*nats.Msg) {})
	if err == nil {
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(s.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// runNATSProcess starts a NATS server in a child process and returns its
// URL. The benchmarks count the allocations of their own process: with the
// server (and the draining subscriber) out of it, they count the
// gateway's and its NATS client's only.
func runNATSProcess(tb testing.TB) string { return runNATSChild(tb, "1") }

// runNATSChild is runNATSProcess; mode "js" turns JetStream on.
func runNATSChild(tb testing.TB, mode string) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), natsChildEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("NATS child process: %v", err)
	}
	return strings.TrimSpace(line)
}
