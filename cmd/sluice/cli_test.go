package main

import (
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestHelp: every command, and every verb of one, prints its usage for -h
// and exits 0, whatever comes before the -h; no flag's usage shows a
// default that its help text contradicts ("default: 0" under "(default
// 16384)").
func TestHelp(t *testing.T) {
	var names []string
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	cases := [][]string{
		{"refdata", "--help"}, {"refdata", "load", "-h"}, {"streams", "apply", "-h"}, {"refdata", "load", "sample", "-h"},
		{"keys", "-h"}, {"keys", "hash", "-h"}, {"keys", "hash", "secret", "--help"},
		{"sub", "quote", "-h"}, {"health", "http://127.0.0.1:1/healthz", "-h"},
	}
	for _, name := range names {
		cases = append(cases, []string{name, "-h"})
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, err := sluiceCmd(t, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("exit %v, want 0:\n%s", err, out)
			}
			want := "Usage: sluice " + args[0]
			if !bytes.Contains(out, []byte(want)) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
			for _, block := range strings.Split(string(out), "\n  -")[1:] {
				if strings.Contains(block, "(default") && strings.Contains(block, "\tdefault: ") {
					t.Errorf("a default printed beside the one the help states:\n  -%s", block)
				}
			}
		})
	}
}

// TestUsageListsEveryCommand: the usage text names every command there is.
func TestUsageListsEveryCommand(t *testing.T) {
	for name := range commands {
		if !strings.Contains(usage, "\n  "+name+" ") {
			t.Errorf("usage does not list %q:\n%s", name, usage)
		}
	}
}

// TestStrayArgument: a command without positional arguments refuses one
// rather than ignoring it (a boolean given as "--flag false" would
// otherwise keep its default without a word).
func TestStrayArgument(t *testing.T) {
	out, err := sluiceCmd(t, "gateway", "--coalesce-writes", "false").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), `unexpected argument "false"`) {
		t.Fatalf("err %v output %s", err, out)
	}
}

// TestSubRequiresFilter: `sluice sub` without FILTER is a usage error that
// names '>' for everything; it used to subscribe to everything.
func TestSubRequiresFilter(t *testing.T) {
	_, url := opstest.RunNATS(t)
	for _, args := range [][]string{{"sub", "--nats", url}, {"sub", "--nats", url, ""}, {"sub", "--nats", url, "quote", "trade"}} {
		cmd := sluiceCmd(t, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out.String(), "exactly one FILTER is required") || !strings.Contains(out.String(), "'>'") {
				t.Errorf("%q: err %v output %s", args, err, out.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%q: still running after 10s, want a usage error:\n%s", args, out.String())
		}
	}
}
