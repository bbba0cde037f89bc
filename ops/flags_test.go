package ops_test

import (
	"bytes"
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
