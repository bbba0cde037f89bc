package ops_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/ops"
)

func TestEnvName(t *testing.T) {
	tests := []struct{ flag, want string }{
		{"listen", "SLUICE_LISTEN"},
		{"ops-listen", "SLUICE_OPS_LISTEN"},
		{"nats.url", "SLUICE_NATS_URL"},
		{"Max-Batch-Bytes", "SLUICE_MAX_BATCH_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			if got := ops.EnvName(tt.flag); got != tt.want {
				t.Errorf("EnvName(%q) = %q, want %q", tt.flag, got, tt.want)
			}
		})
	}
}

// testFlags defines the flags ApplyEnv tests use.
func testFlags(t *testing.T) (*flag.FlagSet, *string, *time.Duration) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", ":8080", "data listen address")
	wait := fs.Duration("max-wait", time.Second, "longest wait")
	return fs, listen, wait
}

func TestApplyEnvPrecedence(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantListen string
		wantWait   time.Duration
	}{
		{"default", nil, nil, ":8080", time.Second},
		{"env beats default", nil, map[string]string{"SLUICE_LISTEN": ":9000", "SLUICE_MAX_WAIT": "3s"}, ":9000", 3 * time.Second},
		{"command line beats env", []string{"-listen", ":7000"}, map[string]string{"SLUICE_LISTEN": ":9000"}, ":7000", time.Second},
		{"empty env is unset", nil, map[string]string{"SLUICE_LISTEN": ""}, ":8080", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs, listen, wait := testFlags(t)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if err := ops.ApplyEnv(fs); err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			if *listen != tt.wantListen || *wait != tt.wantWait {
				t.Errorf("listen, max-wait = %q, %v; want %q, %v", *listen, *wait, tt.wantListen, tt.wantWait)
			}
		})
	}
}

func TestApplyEnvBadValue(t *testing.T) {
	t.Setenv("SLUICE_MAX_WAIT", "soon")
	t.Setenv("SLUICE_LISTEN", ":9000")
	fs, listen, _ := testFlags(t)
	if err := fs.Parse(nil); err != nil {
		t.Fatalf("parse: %v", err)
	}
	err := ops.ApplyEnv(fs)
	if err == nil {
		t.Fatal("ApplyEnv succeeded, want an error")
	}
	for _, want := range []string{"SLUICE_MAX_WAIT", "-max-wait", `"soon"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if *listen != ":9000" {
		t.Errorf("listen = %q, want the good variable applied", *listen)
	}
}

func TestUsage(t *testing.T) {
	fs, _, _ := testFlags(t)
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	ops.Usage(fs, "gateway", "Runs the HTTP/2 gateway.")()
	out := buf.String()
	for _, want := range []string{
		"Usage: sluice gateway [flags]", "Runs the HTTP/2 gateway.",
		"-listen string", "data listen address", `default: ":8080"`, "env: SLUICE_LISTEN",
		"-max-wait duration", "default: 1s", "env: SLUICE_MAX_WAIT",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
}

// TestParseInterspersed: flags count wherever they stand among the
// positional arguments, "--" ends them, and what was set stays set.
func TestParseInterspersed(t *testing.T) {
	f := func(args []string, wantListen string, wantWait time.Duration, wantArgs ...string) {
		t.Helper()
		fs, listen, wait := testFlags(t)
		if err := ops.ParseInterspersed(fs, args); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if *listen != wantListen || *wait != wantWait {
			t.Errorf("%q: listen, max-wait = %q, %v; want %q, %v", args, *listen, *wait, wantListen, wantWait)
		}
		if got := fs.Args(); strings.Join(got, "|") != strings.Join(wantArgs, "|") || len(got) != len(wantArgs) {
			t.Errorf("%q: args %q, want %q", args, got, wantArgs)
		}
		visited := 0
		fs.Visit(func(*flag.Flag) { visited++ })
		if want := btoi(wantListen != ":8080") + btoi(wantWait != time.Second); visited != want {
			t.Errorf("%q: %d flags visited as set, want %d", args, visited, want)
		}
	}
	f(nil, ":8080", time.Second)
	f([]string{"FILE"}, ":8080", time.Second, "FILE")
	f([]string{"FILE", "--listen", ":9"}, ":9", time.Second, "FILE")
	f([]string{"--listen", ":9", "FILE"}, ":9", time.Second, "FILE")
	f([]string{"a", "-max-wait=2s", "b", "--listen", ":9", "c"}, ":9", 2*time.Second, "a", "b", "c")
	f([]string{"a", "--", "--listen", ":9"}, ":8080", time.Second, "a", "--listen", ":9")
	f([]string{"--listen", ":9", "--", "-x"}, ":9", time.Second, "-x")
	f([]string{"-", "--max-wait", "3s"}, ":8080", 3*time.Second, "-")
	f([]string{"a", "--"}, ":8080", time.Second, "a")

	fs, _, _ := testFlags(t)
	if err := ops.ParseInterspersed(fs, []string{"FILE", "-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("FILE -h: err %v, want flag.ErrHelp", err)
	}
	fs, _, _ = testFlags(t)
	if err := ops.ParseInterspersed(fs, []string{"FILE", "--nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("FILE --nope: err %v, want the unknown flag named", err)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestUsageDefaults: a default the help text states is not contradicted by
// the flag's zero value, and a set without flags prints no "Flags:" heading.
func TestUsageDefaults(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.Int("concurrency-max", 0, "highest limit (default 16384); past it 503")
	fs.Int("client-burst", 0, "bucket size (default: the rate)")
	fs.Int("client-rate", 0, "requests/s (0: unlimited)")
	fs.Int("read-buffer", 16384, "bytes per connection")
	ops.Usage(fs, "gateway", "")()
	blocks := strings.Split(buf.String(), "\n  -")
	want := map[string]string{"concurrency-max": "", "client-burst": "", "client-rate": "default: 0", "read-buffer": "default: 16384"}
	for _, b := range blocks[1:] {
		name, _, _ := strings.Cut(b, " ")
		def := ""
		if _, after, ok := strings.Cut(b, "\tdefault: "); ok {
			def = "default: " + strings.Fields(after)[0]
		}
		if def != want[name] {
			t.Errorf("-%s: %q, want %q:\n%s", name, def, want[name], b)
		}
		delete(want, name)
	}
	if len(want) != 0 {
		t.Errorf("flags missing from the usage: %v\n%s", want, buf.String())
	}

	empty := flag.NewFlagSet("keys", flag.ContinueOnError)
	buf.Reset()
	empty.SetOutput(&buf)
	ops.Usage(empty, "keys hash KEY", "Prints the SHA-256 of KEY.")()
	if out := buf.String(); strings.Contains(out, "Flags:") || !strings.Contains(out, "Usage: sluice keys hash KEY\n") {
		t.Errorf("usage without flags:\n%s", out)
	}
}
