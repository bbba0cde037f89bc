// Command sluice is the one binary of sluice: each subcommand wires the
// packages together and holds no logic of its own.
package main

import (
	"flag"
	"fmt"
	"os"
)

// commands maps each subcommand to its entry point; each returns the
// process exit code.
var commands = map[string]func(args []string) int{
	"dev":      runDev,
	"gateway":  runGateway,
	"worker":   runWorker,
	"refdata":  runRefdata,
	"sub":      runSub,
	"streams":  runStreams,
	"health":   runHealth,
	"keys":     runKeys,
	"bench":    runBench,
	"nats":     runNATS,
	"natsauth": runNATSAuth,
	"version":  runVersion,
}

const usage = `sluice: a message-batching HTTP/2 to NATS pipeline gateway for market data

Usage: sluice <command> [flags]

Commands:
  dev       one process with an embedded NATS server, the sample reference data, the gateway and a worker per group
  gateway   the HTTP edge: decodes, batches onto NATS, answers with results
  worker    a worker of one group: validates and enriches events
  refdata   load reference data into NATS: sluice refdata load --nats URL FILE
  sub       print enriched events as JSON lines: sluice sub --nats URL FILTER ('>' for all of them)
  streams   create or update the JetStream streams of durable delivery: sluice streams apply --nats URL --delivery MODES
  health    probe an HTTP health endpoint and exit 0 if it answers 200: sluice health URL
  keys      sluice keys hash KEY: the SHA-256 of an API key for the keys file
  bench     the benchmark suite: starts everything it needs, writes benchmarks/RESULTS.md
  nats      a standalone embedded NATS server with JetStream (the benchmark suite runs it apart)
  natsauth  the compose stack's NATS passwords and TLS certificate: sluice natsauth init --nats-dir DIR --users-dir DIR
  version   print the version

Flags may come before or after a command's arguments; '--' ends them. Every flag can also be set with an
environment variable SLUICE_<FLAG> ('-' as '_').
Run 'sluice <command> -h' for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	name := os.Args[1]
	if isHelp(name) {
		fmt.Print(usage)
		return
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "sluice: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
	os.Exit(cmd(os.Args[2:]))
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func runVersion(args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if ok, code := parse(fs, "version", "Prints the version.", args); !ok {
		return code
	}
	fmt.Println("sluice", version)
	return 0
}

// verbUsage answers a command of verbs (refdata load, keys hash) called
// without a known one: the usage line, exit 0 when help was asked for, else
// a usage error.
func verbUsage(args []string, usage string) int {
	fmt.Fprintln(os.Stderr, usage)
	if len(args) > 0 && isHelp(args[0]) {
		return 0
	}
	return 2
}

// isHelp reports whether arg asks for help as the flag package reads it.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "--h", "help":
		return true
	}
	return false
}
