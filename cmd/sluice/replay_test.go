package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// TestSubReplay: sluice sub --since, --since-seq and --last print what the
// enriched stream stored, from their starting point, for the filter.
func TestSubReplay(t *testing.T) {
	_, url := opstest.RunNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subjects := schemas.MustSubjects("")
	if _, err := bus.Apply(ctx, js, subjects, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}); err != nil {
		t.Fatal(err)
	}
	// Stream sequences 1-5: AAPL q1, MSFT q2, AAPL q3, BRK.B q4, AAPL q5.
	for i, sym := range []string{"AAPL", "MSFT", "AAPL", "BRK.B", "AAPL"} {
		en := schemas.Enriched{ID: "q" + strconv.Itoa(i+1), Source: "test", Type: schemas.TypeQuoteEnrichedV1,
			Subject: sym, Time: time.Now().UnixNano(), Kind: schemas.KindQuote}
		en.Quote.Symbol = sym
		if _, err := js.Publish(ctx, subjects.Enriched(schemas.KindQuote, sym), en.AppendMsgpack(nil)); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(count int, args ...string) string {
		t.Helper()
		out, err := sluiceCmd(t, append([]string{"sub", "--nats", url, "--count", strconv.Itoa(count)}, args...)...).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("sub %v: %v %s", args, err, stderr)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var ev struct{ ID string }
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			got = append(got, ev.ID)
		}
		return strings.Join(got, " ")
	}
	for _, c := range []struct {
		args  []string
		count int
		want  string
	}{
		{[]string{"--since", "1h", "quote.AAPL"}, 3, "q1 q3 q5"},
		{[]string{"--since-seq", "3", ">"}, 3, "q3 q4 q5"},
		{[]string{"--last", "quote"}, 3, "q2 q4 q5"},
		{[]string{"--last", "quote.BRK.B"}, 1, "q4"},
	} {
		if got := ids(c.count, c.args...); got != c.want {
			t.Errorf("sub %v printed %s, want %s", c.args, got, c.want)
		}
	}
	out, err := sluiceCmd(t, "sub", "--nats", url, "--last", "--since", "1m", "quote").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "exclusive") {
		t.Errorf("--last with --since: %v %s", err, out)
	}
}
