package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

const streamsUsage = "Usage: sluice streams apply --nats URL [--prefix P] [--replicas N] [--enriched-max-age D] [--enriched-max-bytes N] [--duplicates D]"

// streamsTimeout bounds `sluice streams apply`: bus.Apply retries while a
// cluster elects its leaders.
const streamsTimeout = 30 * time.Second

// runStreams serves `sluice streams apply`: it creates or updates the
// pipeline's three streams (ingest, enriched, dlq) as the gateway and the
// workers do at start in durable delivery, and prints what it did.
func runStreams(args []string) int {
	if len(args) == 0 || args[0] != "apply" {
		return verbUsage(args, streamsUsage)
	}
	fs := flag.NewFlagSet("streams apply", flag.ContinueOnError)
	var c commonFlags
	var so bus.StreamOptions
	c.register(fs, true)
	registerStreamFlags(fs, &so, true)
	if ok, code := parse(fs, "streams apply", "Creates the pipeline's JetStream streams (ingest, enriched, dlq) or updates their limits, and prints what it created, updated or left unchanged. A stream that exists with another retention, subjects, storage or discard policy is an error naming the field, and is left as it is.", args[1:]); !ok {
		return code
	}
	subjects, err := schemas.NewSubjects(c.prefix)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice streams apply: --prefix: %v\n", err)
		return 2
	}
	if err := so.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "sluice streams apply: %v\n", err)
		return 2
	}
	nc, err := nats.Connect(c.nats, nats.Name("sluice-streams"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice streams apply: connecting to %s: %v\n", c.nats, err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice streams apply: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), streamsTimeout)
	defer cancel()
	applied, err := bus.Apply(ctx, js, subjects, so)
	for _, a := range applied {
		fmt.Println(appliedLine(a))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice streams apply: %v\n", err)
		return 1
	}
	return 0
}

// appliedLine is one line of `sluice streams apply`'s output:
// "sluice-enriched: updated (max_age, replicas)".
func appliedLine(a bus.Applied) string {
	if len(a.Changed) == 0 {
		return a.Stream + ": " + string(a.Action)
	}
	return a.Stream + ": " + string(a.Action) + " (" + strings.Join(a.Changed, ", ") + ")"
}
