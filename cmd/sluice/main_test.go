package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestMain lets tests run the sluice binary itself: the test binary re-executes
// itself with SLUICE_TEST_MAIN=1 and the command's arguments.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TEST_MAIN") == "1" {
		os.Args = append([]string{"sluice"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func sluiceCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
	return cmd
}

// TestDevCommand runs `sluice dev` as a user does, without SLUICE_*
// variables: it prints where it listens and a curl line, serves a quote in
// durable delivery (its default: `sluice sub --last` reads the quote back
// from the enriched stream, no flag needed), and exits 0 on SIGTERM after
// draining, without a warning on the way out (a clean shutdown used to log
// "nats disconnected err=<nil>" once per connection), leaving nothing in
// its temporary folder.
func TestDevCommand(t *testing.T) {
	tmp := t.TempDir()
	cmd := sluiceCmd(t, "dev", "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = append(withoutSluiceEnv(cmd.Env), "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	dataRe := regexp.MustCompile(`data API\s+http://(\S+)`)
	natsRe := regexp.MustCompile(`NATS\s+(nats://\S+)`)
	var addr, natsURL string
	var banner strings.Builder
	deadline := time.After(20 * time.Second)
	for addr == "" || !strings.Contains(banner.String(), "curl") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("sluice dev exited early:\n%s", banner.String())
			}
			banner.WriteString(l + "\n")
			if m := dataRe.FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
			if m := natsRe.FindStringSubmatch(l); m != nil {
				natsURL = m[1]
			}
		case <-deadline:
			t.Fatalf("no banner within 20s:\n%s", banner.String())
		}
	}
	resp, body := post(t, clients()["h2c"], "http://"+addr+"/v1/events/quote", "application/json",
		quoteJSON("AAPL", 1, 1.01), "Prefer", "return=representation")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var ev struct{ ID string }
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
		t.Fatalf("answer %s: %v", body, err)
	}
	sub := sluiceCmd(t, "sub", "--nats", natsURL, "--last", "--count", "1", "quote.AAPL")
	sub.Env = withoutSluiceEnv(sub.Env)
	last, err := sub.Output()
	if err != nil || !strings.Contains(string(last), `"id":"`+ev.ID+`"`) {
		t.Fatalf("sub --last printed %s (%v), want the quote %s", last, err, ev.ID)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sluice dev exited with %v, want 0:\n%s", err, stderr.String())
		}
		if strings.Contains(stderr.String(), "level=WARN") || strings.Contains(stderr.String(), "level=ERROR") {
			t.Fatalf("a clean run logged a warning:\n%s", stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sluice dev did not exit within 15s of SIGTERM")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
		t.Fatalf("sluice dev left %v in its temporary folder", left)
	}
}

// withoutSluiceEnv returns env without SLUICE_* variables other than
// SLUICE_TEST_MAIN: a command run with it takes its defaults.
func withoutSluiceEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "SLUICE_") && !strings.HasPrefix(kv, "SLUICE_TEST_MAIN=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func TestUnknownCommand(t *testing.T) {
	out, err := sluiceCmd(t, "frobnicate").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), `unknown command "frobnicate"`) {
		t.Fatalf("err %v output %s", err, out)
	}
}

func TestFlagFromEnvironment(t *testing.T) {
	cmd := sluiceCmd(t, "worker")
	cmd.Env = append(cmd.Env, "SLUICE_CONCURRENCY=notanumber")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "SLUICE_CONCURRENCY") {
		t.Fatalf("err %v output %s", err, out)
	}
}

// TestRefdataLoad loads the sample through the command and rejects a bad
// file with its reason.
func TestRefdataLoad(t *testing.T) {
	_, url := opstest.RunNATS(t)
	out, err := sluiceCmd(t, "refdata", "load", "--nats", url, "sample").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "keys=224") {
		t.Fatalf("load sample: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"instruments":[{"symbol":"X","currency":"US"}],"fx":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Flags may follow FILE.
	out, err = sluiceCmd(t, "refdata", "load", bad, "--nats", url).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "3-letter") {
		t.Fatalf("bad file: %v\n%s", err, out)
	}
}

func TestKeysHash(t *testing.T) {
	out, err := sluiceCmd(t, "keys", "hash", "secret").Output()
	if err != nil || strings.TrimSpace(string(out)) != admit.HashKey("secret") {
		t.Fatalf("%v %s", err, out)
	}
}

// TestWorkerProcs: a worker runs on one CPU unless --procs (or
// SLUICE_PROCS) says otherwise or the GOMAXPROCS variable is set.
func TestWorkerProcs(t *testing.T) {
	for _, c := range []struct {
		flag int
		set  bool
		env  string
		want int
	}{
		{1, false, "", 1},  // default
		{1, false, "4", 0}, // GOMAXPROCS variable wins over the default
		{3, true, "4", 3},  // an explicit --procs wins over it
		{0, true, "", 0},   // 0: Go's default
	} {
		if got := workerProcs(c.flag, c.set, c.env); got != c.want {
			t.Errorf("workerProcs(%d, %v, %q) = %d, want %d", c.flag, c.set, c.env, got, c.want)
		}
	}
	out, err := sluiceCmd(t, "worker", "--group", "quotes", "--procs", "-1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--procs (SLUICE_PROCS) -1") {
		t.Fatalf("--procs -1: err %v output %s", err, out)
	}
	cmd := sluiceCmd(t, "worker", "--group", "quotes")
	cmd.Env = append(cmd.Env, "SLUICE_PROCS=-2")
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "SLUICE_PROCS) -2") {
		t.Fatalf("SLUICE_PROCS=-2: err %v output %s", err, out)
	}
	// sluice nats refuses a negative --procs the same way (it ignored it).
	out, err = sluiceCmd(t, "nats", "--procs", "-3").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--procs -3") {
		t.Fatalf("nats --procs -3: err %v output %s", err, out)
	}
}
