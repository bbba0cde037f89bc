package main

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/schemas"
)

func TestParseDelivery(t *testing.T) {
	for _, c := range []struct {
		in           string
		quote, trade bus.Mode
		str          string
	}{
		{"core", bus.ModeCore, bus.ModeCore, "core"},
		{"durable", bus.ModeDurable, bus.ModeDurable, "durable"},
		{"quote=core,trade=durable", bus.ModeCore, bus.ModeDurable, "quote=core,trade=durable"},
		{"trade=durable", bus.ModeCore, bus.ModeDurable, "quote=core,trade=durable"},
		{" quote = durable ", bus.ModeDurable, bus.ModeCore, "quote=durable,trade=core"},
		{"durable,quote=core", bus.ModeCore, bus.ModeDurable, "quote=core,trade=durable"},
		{"quote=durable,trade=durable", bus.ModeDurable, bus.ModeDurable, "durable"},
	} {
		ms, err := parseDelivery(c.in)
		if err != nil {
			t.Errorf("parseDelivery(%q): %v", c.in, err)
			continue
		}
		if ms.Of(schemas.KindQuote) != c.quote || ms.Of(schemas.KindTrade) != c.trade {
			t.Errorf("parseDelivery(%q) = quote %s trade %s, want %s %s", c.in, ms.Of(schemas.KindQuote), ms.Of(schemas.KindTrade), c.quote, c.trade)
		}
		if got := ms.String(); got != c.str {
			t.Errorf("parseDelivery(%q).String() = %q, want %q", c.in, got, c.str)
		}
		back, err := parseDelivery(ms.String())
		if err != nil || back != ms {
			t.Errorf("round trip of %q: %v %v", c.in, back, err)
		}
	}
	for _, bad := range []string{"", "jetstream", "quote=fast", "order=durable", "quote=core,quote=durable", "core,durable", "quote"} {
		if ms, err := parseDelivery(bad); err == nil {
			t.Errorf("parseDelivery(%q) = %v, want an error", bad, ms)
		}
	}
}

func TestDeliveryFlagEnv(t *testing.T) {
	var ms bus.Modes
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Var(deliveryFlag{&ms}, "delivery", deliveryUsage)
	t.Setenv("SLUICE_DELIVERY", "trade=durable")
	if ok, code := parse(fs, "x", "test", nil); !ok {
		t.Fatalf("parse: code %d", code)
	}
	if ms.Of(schemas.KindTrade) != bus.ModeDurable || ms.Of(schemas.KindQuote) != bus.ModeCore {
		t.Fatalf("SLUICE_DELIVERY=trade=durable gave %s", ms)
	}
}

func TestQueueDelayFlag(t *testing.T) {
	var a gateway.AdmissionOptions
	f := queueDelayFlag{&a}
	if err := f.Set("quote=250ms,trade=5m"); err != nil {
		t.Fatal(err)
	}
	if a.Shed.MaxQueueDelay != 0 || a.QueueDelays[schemas.KindQuote] != 250*time.Millisecond || a.QueueDelays[schemas.KindTrade] != 5*time.Minute {
		t.Fatalf("got %v %v", a.Shed.MaxQueueDelay, a.QueueDelays)
	}
	if got := f.String(); got != "quote=250ms,trade=5m0s" {
		t.Errorf("String() = %q", got)
	}
	if err := f.Set("1s"); err != nil || a.Shed.MaxQueueDelay != time.Second || len(a.QueueDelays) != 0 {
		t.Fatalf("Set(1s): %v %v %v", err, a.Shed.MaxQueueDelay, a.QueueDelays)
	}
	if err := f.Set("2s,trade=1m"); err != nil || a.Shed.MaxQueueDelay != 2*time.Second || a.QueueDelays[schemas.KindTrade] != time.Minute {
		t.Fatalf("Set(2s,trade=1m): %v %v %v", err, a.Shed.MaxQueueDelay, a.QueueDelays)
	}
	for _, bad := range []string{"", "fast", "quote=-1s", "order=1s", "1s,2s", "quote=1s,quote=2s"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

// TestDeliveryDefault: sluice gateway, sluice worker, sluice dev and
// sluice streams apply default to durable for every type; SLUICE_DELIVERY
// or --delivery core brings core back.
func TestDeliveryDefault(t *testing.T) {
	commands := map[string]func(fs *flag.FlagSet) *bus.Modes{
		"gateway": func(fs *flag.FlagSet) *bus.Modes {
			var g gatewayFlags
			g.register(fs)
			return &g.opts.Delivery
		},
		"worker": func(fs *flag.FlagSet) *bus.Modes {
			var w workerFlags
			w.register(fs)
			w.registerDurable(fs)
			return &w.delivery
		},
		"dev": func(fs *flag.FlagSet) *bus.Modes {
			var cfg devConfig
			cfg.gateway.register(fs)
			cfg.worker.register(fs)
			return &cfg.gateway.opts.Delivery
		},
	}
	perType, err := parseDelivery("quote=core,trade=durable")
	if err != nil {
		t.Fatal(err)
	}
	for name, register := range commands {
		for _, c := range []struct {
			env  string
			args []string
			want bus.Modes
		}{
			{"", nil, bus.AllModes(bus.ModeDurable)},
			{"core", nil, bus.AllModes(bus.ModeCore)},
			{"", []string{"--delivery", "core"}, bus.AllModes(bus.ModeCore)},
			{"", []string{"--delivery", "quote=core,trade=durable"}, perType},
		} {
			t.Setenv("SLUICE_DELIVERY", c.env)
			if c.env == "" {
				os.Unsetenv("SLUICE_DELIVERY")
			}
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			ms := register(fs)
			if ok, code := parse(fs, name, "test", c.args); !ok {
				t.Fatalf("%s %v: code %d", name, c.args, code)
			}
			if *ms != c.want {
				t.Errorf("%s %v with SLUICE_DELIVERY=%q: %s, want %s", name, c.args, c.env, ms, c.want)
			}
			if d := fs.Lookup("delivery").DefValue; d != "durable" {
				t.Errorf("%s: --delivery default printed as %q", name, d)
			}
		}
	}
}
