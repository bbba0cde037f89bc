package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

func runSub(args []string) int {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	var c commonFlags
	c.register(fs, true)
	count := fs.Int("count", 0, "exit after this many events (0: run until interrupted)")
	if ok, code := parseOperands(fs, "sub", "FILTER", "Prints enriched events matching FILTER as JSON lines. FILTER (required): quote.AAPL, quote.BRK.B, quote.*, quote, *.AAPL, or '>' for every enriched event.", args); !ok {
		return code
	}
	log, err := c.logger()
	if err != nil {
		fs.Usage()
		return 2
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		fmt.Fprintln(os.Stderr, "sluice sub: exactly one FILTER is required, for example quote.AAPL, or '>' for every enriched event")
		return 2
	}
	subjects, err := schemas.NewSubjects(c.prefix)
	if err != nil {
		return fatal(log, "bad --prefix", err)
	}
	subject, err := subjects.EnrichedFilter(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice sub: %v\n", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	nc, err := connectNATS(c.nats, "sluice-sub", log)
	if err != nil {
		return fatal(log, "sub", err)
	}
	defer nc.Close()
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	seen := 0
	done := make(chan struct{})
	var buf []byte
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if *count > 0 && seen >= *count {
			return
		}
		var jerr error
		buf, jerr = schemas.AppendEventJSON(buf[:0], m.Data)
		if jerr != nil {
			log.Warn("undecodable event", "subject", m.Subject, "err", jerr)
			return
		}
		buf = append(buf, '\n')
		_, _ = out.Write(buf)
		seen++
		if *count > 0 && seen == *count {
			close(done)
		}
		// The client counts the message being handled as pending until
		// the callback returns: flush when nothing else waits.
		if n, _, _ := m.Sub.Pending(); n <= 1 {
			_ = out.Flush()
		}
	})
	if err != nil {
		return fatal(log, "subscribing", err)
	}
	if err := nc.Flush(); err != nil {
		return fatal(log, "subscribing", err)
	}
	log.Debug("subscribed", "subject", subject)
	_ = sub
	select {
	case <-ctx.Done():
	case <-done:
	}
	_ = sub.Unsubscribe()
	mu.Lock()
	_ = out.Flush()
	mu.Unlock()
	return 0
}
