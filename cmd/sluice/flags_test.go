package main

import (
	"flag"
	"io"
	"testing"
)

// TestCoalesceWritesFlag: --coalesce-writes defaults to on, and false, the
// bare flag and SLUICE_COALESCE_WRITES reach Options.NoWriteCoalescing.
func TestCoalesceWritesFlag(t *testing.T) {
	f := func(env string, args []string, wantOff bool) {
		t.Helper()
		g := parseGatewayFlags(t, "SLUICE_COALESCE_WRITES", env, args)
		o, err := g.build(nil)
		if err != nil {
			t.Fatal(err)
		}
		if o.NoWriteCoalescing != wantOff {
			t.Errorf("env %q, args %q: NoWriteCoalescing %v, want %v", env, args, o.NoWriteCoalescing, wantOff)
		}
	}
	f("", nil, false)
	f("", []string{"--coalesce-writes=false"}, true)
	f("", []string{"--coalesce-writes"}, false)
	f("false", nil, true)
	f("false", []string{"--coalesce-writes=true"}, false)
}

// TestStreamNotSentLowatFlag: --stream-notsent-lowat defaults to 64 KiB,
// and 0 (flag or SLUICE_STREAM_NOTSENT_LOWAT) turns the bound off.
func TestStreamNotSentLowatFlag(t *testing.T) {
	f := func(env string, args []string, want int) {
		t.Helper()
		g := parseGatewayFlags(t, "SLUICE_STREAM_NOTSENT_LOWAT", env, args)
		if got := g.streamOptions().NotSentLowat; got != want {
			t.Errorf("env %q, args %q: NotSentLowat %d, want %d", env, args, got, want)
		}
	}
	f("", nil, 64<<10)
	f("", []string{"--stream-notsent-lowat=0"}, -1)
	f("0", nil, -1)
	f("16384", nil, 16384)
}

// parseGatewayFlags parses args as sluice gateway's flags with the
// environment variable name set to env.
func parseGatewayFlags(t *testing.T, name, env string, args []string) *gatewayFlags {
	t.Helper()
	t.Setenv(name, env)
	var g gatewayFlags
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if ok, code := parse(fs, "gateway", "", args); !ok {
		t.Fatalf("%q: parse failed with code %d", args, code)
	}
	return &g
}
