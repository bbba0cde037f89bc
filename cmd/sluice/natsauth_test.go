package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/ops/natsauth"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// natsArgs are the flags that connect as user to s: its password file, the
// CA and its inbox prefix, as the compose stack passes them.
func natsArgs(s *opstest.SecureNATS, user string) []string {
	return []string{"--nats", s.URL, "--nats-user", user, "--nats-password-file", s.File(user, natsauth.PasswordFile),
		"--nats-ca", s.File(user, natsauth.CAFile), "--nats-inbox-prefix", natsauth.InboxPrefix(user)}
}

// process is a running sluice command whose log is kept.
type process struct {
	mu  sync.Mutex
	log bytes.Buffer
}

func (p *process) text() string { p.mu.Lock(); defer p.mu.Unlock(); return p.log.String() }

// run starts `sluice args...` and waits for a log line matching ready;
// it returns the process and that line's key=value pairs.
func run(t *testing.T, ready string, args ...string) (*process, map[string]string) {
	t.Helper()
	cmd := sluiceCmd(t, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &process{}
	re := regexp.MustCompile(ready)
	found := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if re.MatchString(sc.Text()) {
				kv := map[string]string{}
				for _, f := range strings.Fields(sc.Text()) {
					if k, v, ok := strings.Cut(f, "="); ok {
						kv[k] = v
					}
				}
				select {
				case found <- kv:
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case kv, ok := <-found:
		if !ok {
			t.Fatalf("sluice %s exited before logging %q:\n%s", args[0], ready, p.text())
		}
		return p, kv
	case <-time.After(60 * time.Second):
		t.Fatalf("sluice %s: no %q within 60s:\n%s", args[0], ready, p.text())
	}
	return nil, nil
}

// TestPipelineWithRestrictedUsers runs the pipeline as the compose
// stack does, against a server of its NATS configuration (TLS, one user
// per role): refdata load as the operator, a worker of each group, a
// gateway, and `sluice sub` as the subscriber, in core then durable
// delivery. A quote and a trade come back enriched (Prefer:
// return=representation), the subscriber prints the quote (in durable
// delivery replayed from the enriched stream too), the gateway's stream
// serves it as a snapshot (`sluice sub --http`), and no process logs a
// permissions violation: the users may do all the pipeline needs.
func TestPipelineWithRestrictedUsers(t *testing.T) {
	s := opstest.RunSecureNATS(t)
	load := append([]string{"refdata", "load"}, natsArgs(s, "operator")...)
	if out, err := sluiceCmd(t, append(load, "sample")...).CombinedOutput(); err != nil {
		t.Fatalf("refdata load as the operator: %v\n%s", err, out)
	}
	for _, mode := range []string{"core", "durable"} {
		t.Run(mode, func(t *testing.T) {
			common := []string{"--delivery", mode, "--ops-listen", "127.0.0.1:0", "--log-level", "info"}
			quotes, _ := run(t, `worker running`, append(append([]string{"worker", "--group", "quotes"}, common...), natsArgs(s, "worker-quotes")...)...)
			trades, _ := run(t, `worker running`, append(append([]string{"worker", "--group", "trades"}, common...), natsArgs(s, "worker-trades")...)...)
			gw, kv := run(t, `gateway listening`, append(append([]string{"gateway", "--listen", "127.0.0.1:0"}, common...), natsArgs(s, "gateway-a")...)...)
			sub := subscriber(t, s, "quote.MSFT")
			c := clients()["h2c"]
			for typ, body := range map[string]string{"quote": quoteJSON("MSFT", 410.1, 410.3),
				"trade": `{"symbol":"VOD.L","price":72.5,"size":1000,"venue":"XLON","trade_id":"t1"}`} {
				url := "http://" + kv["data"] + "/v1/events/" + typ
				opstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
					resp, out := post(t, c, url, "application/json", body, "Prefer", "return=representation")
					if resp.StatusCode != http.StatusOK {
						return fmt.Errorf("%s: status %d: %s", typ, resp.StatusCode, out)
					}
					var ev struct{ Type string }
					if err := json.Unmarshal(out, &ev); err != nil || !strings.Contains(ev.Type, typ+".enriched") {
						return fmt.Errorf("not an enriched %s: %s", typ, out)
					}
					return nil
				})
			}
			waitLine(t, sub, "MSFT")
			// The gateway's own subscribers (in durable delivery fed from
			// the enriched stream): quotes published until one arrives.
			streamed := httpSubscriber(t, "http://"+kv["data"], "quote.MSFT")
			opstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
				post(t, c, "http://"+kv["data"]+"/v1/events/quote", "application/json", quoteJSON("MSFT", 410.2, 410.4))
				select {
				case <-streamed.lines:
					return nil
				default:
					return fmt.Errorf("sluice sub --http printed nothing:\n%s", streamed.proc.text())
				}
			})
			procs := map[string]*process{"quotes worker": quotes, "trades worker": trades, "gateway": gw}
			if mode == "durable" {
				replay := subscriber(t, s, "quote.MSFT", "--since", "1m")
				waitLine(t, replay, "MSFT")
				procs["replaying subscriber"] = replay.proc
			}
			procs["subscriber"] = sub.proc
			for name, p := range procs {
				if strings.Contains(strings.ToLower(p.text()), "permissions violation") {
					t.Errorf("the %s met a permissions violation:\n%s", name, p.text())
				}
			}
		})
	}
}

// subProcess is a running `sluice sub` as the subscriber.
type subProcess struct {
	proc  *process
	lines chan string
}

func subscriber(t *testing.T, s *opstest.SecureNATS, filter string, extra ...string) *subProcess {
	t.Helper()
	args := append(append([]string{"sub", "--log-level", "debug"}, natsArgs(s, "subscriber")...), extra...)
	cmd := sluiceCmd(t, append(args, filter)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sp := &subProcess{proc: &process{}, lines: make(chan string, 100)}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		sp.proc.mu.Lock()
		defer sp.proc.mu.Unlock()
		return sp.proc.log.Write(b)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			sp.lines <- sc.Text()
		}
		close(sp.lines)
	}()
	if !strings.Contains(strings.Join(extra, " "), "--since") {
		opstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			if !strings.Contains(sp.proc.text(), "subscribed") {
				return fmt.Errorf("sluice sub has not subscribed:\n%s", sp.proc.text())
			}
			return nil
		})
	}
	return sp
}

// httpSubscriber runs `sluice sub --http` on a gateway's stream.
func httpSubscriber(t *testing.T, base, filter string) *subProcess {
	t.Helper()
	cmd := sluiceCmd(t, "sub", "--http", base, filter)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sp := &subProcess{proc: &process{}, lines: make(chan string, 100)}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		sp.proc.mu.Lock()
		defer sp.proc.mu.Unlock()
		return sp.proc.log.Write(b)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case sp.lines <- sc.Text():
			default:
			}
		}
	}()
	return sp
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// waitLine waits for sub to print a line holding want.
func waitLine(t *testing.T, sub *subProcess, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-sub.lines:
			if !ok {
				t.Fatalf("sluice sub exited:\n%s", sub.proc.text())
			}
			if strings.Contains(line, want) {
				return
			}
		case <-deadline:
			t.Fatalf("sluice sub printed no %s within 30s:\n%s", want, sub.proc.text())
		}
	}
}

// TestNATSClientRefused: a client without the CA, with a wrong password, or
// asking for TLS from a server without it, fails at once with an error that
// says what to change, instead of retrying for ever.
func TestNATSClientRefused(t *testing.T) {
	s := opstest.RunSecureNATS(t)
	_, plain := opstest.RunNATS(t)
	wrong := t.TempDir() + "/password"
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := natsArgs(s, "subscriber")
	without := func(flag string) []string {
		var out []string
		for i := 0; i < len(base); i += 2 {
			if base[i] != flag {
				out = append(out, base[i], base[i+1])
			}
		}
		return out
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no CA", without("--nats-ca"), "not signed by a trusted CA (give the CA with --nats-ca)"},
		{"no CA, nats:// URL", append(without("--nats-ca"), "--nats", strings.Replace(s.URL, "tls://", "nats://", 1)), "not signed by a trusted CA"},
		{"wrong password", append(without("--nats-password-file"), "--nats-password-file", wrong), "NATS refused the credentials"},
		{"no credentials", []string{"--nats", s.URL, "--nats-ca", s.File("subscriber", natsauth.CAFile)}, "NATS refused the credentials"},
		{"a CA for a server without TLS", append(base, "--nats", plain), "does not offer TLS"},
	}
	for _, c := range cases {
		args := append([]string{"sub", "--count", "1"}, c.args...)
		cmd := sluiceCmd(t, append(args, "quote")...)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s: sluice sub still running after 30s:\n%s", c.name, out)
		}
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: exit %v, want a failure saying %q:\n%s", c.name, err, c.want, out)
		}
	}
}
