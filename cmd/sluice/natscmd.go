package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"github.com/sluice-dev/sluice/ops"
)

// runNATS serves `sluice nats --listen HOST:PORT [--data DIR] [--procs N]`: a
// standalone embedded NATS server with JetStream, until SIGINT or SIGTERM.
// It prints "ready <client URL>" once it accepts connections. The benchmark
// suite runs NATS this way, in a process of its own, so that its CPU time
// can be read apart from the gateway's and the workers'.
func runNATS(args []string) int {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4222", "client address (port 0 picks a free one)")
	data := fs.String("data", "", "JetStream store folder (default: a temporary folder removed at exit)")
	jetStream := fs.Bool("jetstream", true, "enable JetStream (the reference data bucket needs it)")
	logLevel := fs.String("log-level", "warn", "log level")
	procs := fs.Int("procs", 0, "GOMAXPROCS of the server; 0 for Go's default")
	if ok, code := parse(fs, "nats", "A standalone embedded NATS server with JetStream; prints \"ready <client URL>\" once it accepts connections (the benchmark suite runs NATS this way, apart from the gateway and the workers).", args); !ok {
		return code
	}
	switch {
	case *procs < 0:
		fmt.Fprintf(os.Stderr, "sluice nats: --procs %d: want 0 (Go's default) or more\n", *procs)
		return 2
	case *procs > 0:
		runtime.GOMAXPROCS(*procs)
	}
	log, err := ops.NewLogger(os.Stderr, *logLevel, "text")
	if err != nil {
		fs.Usage()
		return 2
	}
	host, portStr, err := net.SplitHostPort(*listen)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		fmt.Fprintf(os.Stderr, "sluice nats: --listen %q is not host:port\n", *listen)
		return 2
	}
	if port == 0 {
		port = -1
	}
	store := *data
	if store == "" && *jetStream {
		if store, err = os.MkdirTemp("", "sluice-nats-"); err != nil {
			return fatal(log, "nats", err)
		}
		defer os.RemoveAll(store)
	}
	ctx, stop := signalContext()
	defer stop()
	s, err := ops.RunNATS(ops.NATSOptions{Host: host, Port: port, JetStream: *jetStream, StoreDir: store,
		ServerName: "sluice-nats", Logger: log})
	if err != nil {
		return fatal(log, "nats", err)
	}
	fmt.Println("ready", s.ClientURL())
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}
