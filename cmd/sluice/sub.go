package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/schemas"
)

func runSub(args []string) int {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	var c commonFlags
	c.register(fs, true)
	count := fs.Int("count", 0, "exit after this many events (0: run until interrupted)")
	httpURL := fs.String("http", "", "read the stream through a gateway at this URL (http://127.0.0.1:8080) instead of NATS: GET /v1/streams/{type}, one type per FILTER")
	snapshot := fs.Bool("snapshot", true, "with --http: start with the gateway's last value of each symbol")
	var replay replayFrom
	fs.DurationVar(&replay.since, "since", 0, "durable delivery: first print the events stored in the enriched stream in this last while (5m), then the new ones")
	fs.Uint64Var(&replay.sinceSeq, "since-seq", 0, "durable delivery: first print the events stored in the enriched stream from this stream sequence on, then the new ones")
	fs.BoolVar(&replay.last, "last", false, "durable delivery: first print the last stored event of each matching symbol (a snapshot), then the new ones")
	if ok, code := parseOperands(fs, "sub", "FILTER", "Prints enriched events matching FILTER as JSON lines. FILTER (required): quote.AAPL, quote.BRK.B, quote.*, quote, *.AAPL, or '>' for every enriched event (with --http: one type, quote.AAPL, quote.* or quote).", args); !ok {
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
	if err := replay.validate(); err != nil || replay.set() && *httpURL != "" {
		fmt.Fprintf(os.Stderr, "sluice sub: %v\n", cmp.Or(err, errors.New("--since, --since-seq and --last read the enriched stream on NATS, not --http")))
		return 2
	}
	if *httpURL != "" {
		return subHTTP(*httpURL, fs.Arg(0), *snapshot, *count, log)
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
	nc, err := c.connect("sluice-sub", log)
	if err != nil {
		return fatal(log, "sub", err)
	}
	defer nc.Close()
	if replay.set() {
		return subReplay(ctx, nc, subjects, subject, replay, *count, log)
	}
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

// subHTTP prints the events of a gateway's stream (NDJSON) matching filter:
// the same events as on NATS, with the gateway's sluiceseq, sluicereplaced
// and sluicetoken attributes; the snapshot marker is logged, not printed.
func subHTTP(base, filter string, snapshot bool, count int, log *slog.Logger) int {
	typ, sym, _ := strings.Cut(filter, ".")
	if _, ok := schemas.ParseKind(typ); !ok {
		fmt.Fprintf(os.Stderr, "sluice sub: with --http, FILTER names one type: quote.AAPL, quote.* or quote (not %q)\n", filter)
		return 2
	}
	if sym == "" {
		sym = "*"
	}
	ctx, stop := signalContext()
	defer stop()
	extra := url.Values{}
	if !snapshot {
		extra.Set("snapshot", "false")
	}
	r, err := stream.Dial(ctx, nil, base, typ, []string{sym}, extra)
	if err != nil {
		return fatal(log, "sub", err)
	}
	defer r.Close()
	log.Debug("subscribed", "url", base, "type", typ, "symbols", sym)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for seen := 0; count == 0 || seen < count; {
		line, err := r.Next()
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			return fatal(log, "sub", err)
		}
		var ctl struct {
			Type, Reason, Token, Detail string
		}
		if bytes.HasPrefix(line, []byte(`{"type":"sluice.`)) && json.Unmarshal(line, &ctl) == nil {
			if ctl.Type == stream.TypeStreamEnd {
				_ = out.Flush()
				log.Warn("the gateway ended the stream", "reason", ctl.Reason, "token", ctl.Token, "detail", ctl.Detail)
				return 1
			}
			log.Debug("control event", "type", ctl.Type)
			continue
		}
		_, _ = out.Write(line)
		_ = out.WriteByte('\n')
		seen++
		if r.Buffered() == 0 {
			_ = out.Flush()
		}
	}
	return 0
}
