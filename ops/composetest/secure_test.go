package composetest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops/natsauth"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestSecureCompose runs the stack of docker-compose.yml, as a user would
// with no setup: the one-shot natsauth service makes the secrets, the nodes
// serve TLS with one user per role, and a quote still comes back enriched
// through both gateways. From the host, with the users' folders copied out
// of the natsauth container: the subscriber reads
// enriched events but may publish nothing, gateway-a cannot read
// gateway-b's inbox nor publish an enriched event, a quotes worker cannot
// publish an ingest batch nor take the trades group's, each refused by the
// server; a client without the
// CA fails on the certificate.
//
// The stack is TestCompose's, so where TestCompose runs too
// (go test ./..., -run TestCompose) it runs these checks as its step
// SecureRoles and this test skips: a stack of its own cost another `up -d`
// from nothing and `down -v`, about 20 s. Run alone (-run
// TestSecureCompose), it brings up its own.
func TestSecureCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("compose test skipped in -short mode: it builds images and starts containers")
	}
	if runsTestCompose() {
		t.Skip("TestCompose runs these checks on its stack (step SecureRoles); -run TestSecureCompose runs them alone on a stack of their own")
	}
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	msg, err := s.buildImages(ctx)
	if err != nil {
		t.Fatalf("docker/build.sh: %v", err)
	}
	t.Log(msg)
	t0 := time.Now()
	if _, err := s.composeCmd(ctx, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 3*time.Minute, 500*time.Millisecond, func() error {
		return s.checkReady(ctx, stackSize(1), "refdata", "natsauth")
	})
	t.Logf("secure stack healthy %v after `up -d` started", time.Since(t0).Round(100*time.Millisecond))

	testSecureRoles(t, s)

	if err := s.down(ctx); err != nil {
		t.Fatal(err)
	}
	if left, err := s.leftovers(ctx); err != nil || len(left) > 0 {
		t.Errorf("down -v left %v %v", left, err)
	}
}

// testSecureRoles checks, on a running stack (natsauth's secrets, TLS, one
// user per role), that a quote comes back enriched through both
// gateways, that each role's forbidden actions are refused by the server,
// that a client without the CA fails on the certificate, and that the
// subscriber reads what the gateways enrich.
func testSecureRoles(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newH2CClient()
	for _, gw := range s.gateways() {
		opstest.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
			return enrichedQuote(ctx, c, gw)
		})
	}

	url := s.natsURLs(0)
	connect := func(user string, withCA bool) (*nats.Conn, error) {
		opts := []nats.Option{nats.Timeout(10 * time.Second), nats.IgnoreDiscoveredServers(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}
		if withCA {
			opts = append(opts, s.natsOptions(t, user)...)
		} else {
			pw, err := os.ReadFile(filepath.Join(s.userDir(t, user), natsauth.PasswordFile))
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, nats.UserInfo(user, string(pw)), nats.CustomInboxPrefix(natsauth.InboxPrefix(user)))
		}
		return nats.Connect(url, opts...)
	}
	if nc, err := connect("subscriber", false); err == nil || !strings.Contains(err.Error(), "certificate") {
		if nc != nil {
			nc.Close()
		}
		t.Errorf("a client without the CA: %v, want a certificate error", err)
	}
	refused := func(user, what string, act func(*nats.Conn) error) {
		t.Helper()
		nc, err := connect(user, true)
		if err != nil {
			t.Fatalf("connecting as %s: %v", user, err)
		}
		defer nc.Close()
		if err := act(nc); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("%s must not %s: got %v, want a permissions violation", user, what, err)
		}
	}
	publish := func(subject string) func(*nats.Conn) error {
		return func(nc *nats.Conn) error { return nc.Publish(subject, []byte("x")) }
	}
	refused("subscriber", "publish an enriched event", publish("sluice.enriched.quote.AAPL"))
	refused("subscriber", "publish an ingest batch", publish("sluice.ingest.quote"))
	refused("subscriber", "delete the enriched stream", publish("$JS.API.STREAM.DELETE.sluice-enriched"))
	refused("gateway-a", "read gateway-b's inbox", func(nc *nats.Conn) error {
		_, err := nc.SubscribeSync("_INBOX.gateway.b.>")
		return err
	})
	refused("gateway-a", "publish an enriched event", publish("sluice.enriched.quote.AAPL"))
	refused("worker-quotes", "publish an ingest batch", publish("sluice.ingest.quote"))
	refused("worker-quotes", "take the trades group's batches", func(nc *nats.Conn) error {
		_, err := nc.QueueSubscribeSync("sluice.ingest.trade", "trades")
		return err
	})

	// The subscriber reads what the gateways enrich.
	nc, err := connect("subscriber", true)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("sluice.enriched.quote." + secureSymbol)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := enrichedQuote(ctx, c, s.gateways()[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("the subscriber got no enriched quote: %v (last error %v)", err, nc.LastError())
	}
}

// runsTestCompose reports whether this run's -run and -skip select
// TestCompose with all its steps, so that its step SecureRoles runs: a
// pattern with a second level (-run TestCompose/Down) may leave the step
// out, and then TestSecureCompose runs on its own stack.
func runsTestCompose() bool {
	level := func(name string) (string, bool) {
		f := flag.Lookup(name)
		if f == nil {
			return "", true
		}
		p := f.Value.String()
		return p, !strings.Contains(p, "/")
	}
	run, ok := level("test.run")
	if !ok {
		return false
	}
	if run != "" {
		if re, err := regexp.Compile(run); err != nil || !re.MatchString("TestCompose") {
			return false
		}
	}
	skip, ok := level("test.skip")
	if !ok {
		return false
	}
	if skip != "" {
		if re, err := regexp.Compile(skip); err != nil || re.MatchString("TestCompose") {
			return false
		}
	}
	return true
}

// secureSymbol is the instrument SecureRoles quotes: one no other step of
// the compose test quotes, so that the last price its quote leaves in the
// workers' price band cannot turn another step's quotes of the same symbol
// into dead letters (price_out_of_band). With MSFT at 410 it did, when
// SecureRoles ran before ScaleQuotes (quotes near 100): two of 10,000
// quotes were dead-lettered and the step failed as if they were lost.
const secureSymbol = "JPM"

// enrichedQuote posts a quote of secureSymbol to gateway with Prefer:
// return=representation and wants it back enriched.
func enrichedQuote(ctx context.Context, c *http.Client, gateway string) error {
	body := `{"symbol":"` + secureSymbol + `","bid":301.1,"ask":301.3,"bid_size":100,"ask_size":200,"venue":"XNAS"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gateway+"/v1/events/quote", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", "return=representation")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var ev struct{ Subject, Type string }
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil || resp.StatusCode != http.StatusOK || ev.Subject != secureSymbol {
		return fmt.Errorf("%s: status %d, %+v %v", gateway, resp.StatusCode, ev, err)
	}
	return nil
}
