package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

const streamsUsage = "Usage: sluice streams apply --nats URL [--delivery MODES] [--prefix P] [--replicas N] [--enriched-max-age D] [--enriched-max-bytes N] [--duplicates D] [--partitions N]"

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
	so.Delivery = DefaultDelivery
	fs.Var(deliveryFlag{&so.Delivery}, "delivery", "the delivery modes the pipeline runs with (as the gateway's and workers' --delivery): the streams hold the subjects of the durable types, exactly: a subject of the pipeline that no durable type needs (a core type's) is removed, and printed")
	if ok, code := parse(fs, "streams apply", "Creates the pipeline's JetStream streams (ingest, enriched, dlq) over the subjects of --delivery's durable types, or updates them: sets their subjects to exactly those, and the limits given (a limit left at 0 keeps the stream's). Prints what it created, updated (the fields, and the subjects added and removed) or left unchanged. A stream that exists with another retention, storage or discard policy, or with a subject outside the pipeline's, is an error naming the field, and is left as it is.", args[1:]); !ok {
		return code
	}
	if !so.Delivery.Any(bus.ModeDurable) {
		fmt.Fprintf(os.Stderr, "sluice streams apply: --delivery %s has no durable type: the streams serve durable types alone (to stop a stream capturing core types, delete it)\n", so.Delivery)
		return 2
	}
	so.Exact = true
	subjects, err := schemas.NewSubjects(c.prefix)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice streams apply: --prefix: %v\n", err)
		return 2
	}
	if err := so.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "sluice streams apply: %v\n", err)
		return 2
	}
	nc, err := c.connectOnce("sluice-streams")
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice streams apply: %v\n", err)
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
// "sluice-enriched: updated (max_age, replicas)", or with its subjects
// "sluice-ingest: updated (subjects) added sluice.ingest.trade removed
// sluice.ingest.>".
func appliedLine(a bus.Applied) string {
	if len(a.Changed) == 0 {
		return a.Stream + ": " + string(a.Action)
	}
	line := a.Stream + ": " + string(a.Action) + " (" + strings.Join(a.Changed, ", ") + ")"
	if len(a.Added) > 0 {
		line += " added " + strings.Join(a.Added, " ")
	}
	if len(a.Removed) > 0 {
		line += " removed " + strings.Join(a.Removed, " ")
	}
	return line
}
