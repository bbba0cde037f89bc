package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

func runRefdata(args []string) int {
	if len(args) == 0 || args[0] != "load" {
		return verbUsage(args, "Usage: sluice refdata load --nats URL FILE   (FILE may be 'sample' for the built-in sample data)")
	}
	fs := flag.NewFlagSet("refdata load", flag.ContinueOnError)
	var c commonFlags
	c.register(fs, true)
	replicas := fs.Int("replicas", 0, "copies of the reference data bucket in a JetStream cluster (3 on a three-node cluster rides out the loss of a node); 0 keeps an existing bucket's, 1 for a new one")
	if ok, code := parseOperands(fs, "refdata load", "FILE", "Loads instruments and FX rates from a JSON file into the NATS KV bucket <prefix>_refdata; workers pick up changes without a restart. FILE may be 'sample', the built-in sample data.", args[1:]); !ok {
		return code
	}
	log, err := c.logger()
	if err != nil {
		fs.Usage()
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "sluice refdata load: exactly one FILE is required (or 'sample')")
		return 2
	}
	subjects, err := schemas.NewSubjects(c.prefix)
	if err != nil {
		return fatal(log, "bad --prefix", err)
	}
	rd := enrich.Sample()
	if f := fs.Arg(0); f != "sample" {
		if rd, err = enrich.LoadFile(f); err != nil {
			return fatal(log, "reading reference data", err)
		}
	}
	ctx, stop := signalContext()
	defer stop()
	nc, err := c.connectOnce("sluice-refdata")
	if err != nil {
		return fatal(log, "loading reference data", err)
	}
	defer nc.Close()
	if err := uploadRefdata(ctx, nc, subjects, rd, *replicas, log); err != nil {
		return fatal(log, "loading reference data", err)
	}
	return 0
}
