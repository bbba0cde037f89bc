package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/schemas"
)

// DefaultDelivery is --delivery's default on sluice gateway, sluice worker
// and sluice dev: durable for every type, so that a 202 means stored unless
// an operator asks for core. The packages' own zero Modes stay core (see
// [bus.Modes]): the default is the command line's, registered with the flag
// by [registerDelivery].
var DefaultDelivery = bus.AllModes(bus.ModeDurable)

// parseDelivery parses a --delivery value: a mode for every type
// ("durable", "core"), or a mode per type ("quote=core,trade=durable"), a
// bare mode among them setting the default of the types not named
// ("durable,quote=core"). Types not named get core.
func parseDelivery(s string) (bus.Modes, error) {
	var ms bus.Modes
	s = strings.TrimSpace(s)
	if s == "" {
		return ms, fmt.Errorf("empty delivery (want core, durable or TYPE=MODE,...)")
	}
	def := bus.ModeCore
	var set [len(bus.Modes{})]bool
	defaults := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		name, mode, per := strings.Cut(part, "=")
		if !per {
			m, err := bus.ParseMode(part)
			if err != nil {
				return ms, err
			}
			if defaults++; defaults > 1 {
				return ms, fmt.Errorf("delivery %q: more than one default mode", s)
			}
			def = m
			continue
		}
		k, ok := schemas.ParseKind(strings.TrimSpace(name))
		if !ok {
			return ms, fmt.Errorf("delivery %q: unknown event type %q (want one of %s)", s, name, kindNames())
		}
		if set[k] {
			return ms, fmt.Errorf("delivery %q: type %s named twice", s, k)
		}
		m, err := bus.ParseMode(strings.TrimSpace(mode))
		if err != nil {
			return ms, fmt.Errorf("delivery %q: %s: %w", s, k, err)
		}
		set[k] = true
		ms[k] = m
	}
	for _, k := range schemas.Kinds {
		if !set[k] {
			ms[k] = def
		}
	}
	return ms, nil
}

func kindNames() string {
	names := make([]string, len(schemas.Kinds))
	for i, k := range schemas.Kinds {
		names[i] = k.String()
	}
	return strings.Join(names, ", ")
}

// deliveryFlag is the --delivery flag (env SLUICE_DELIVERY), parsed by
// [parseDelivery] into *modes.
type deliveryFlag struct{ modes *bus.Modes }

func (f deliveryFlag) String() string {
	if f.modes == nil {
		return DefaultDelivery.String()
	}
	return f.modes.String()
}

// registerDelivery registers --delivery into *ms with [DefaultDelivery] as
// its default.
func registerDelivery(fs *flag.FlagSet, ms *bus.Modes) {
	*ms = DefaultDelivery
	fs.Var(deliveryFlag{ms}, "delivery", deliveryUsage)
}

func (f deliveryFlag) Set(v string) error {
	ms, err := parseDelivery(v)
	if err != nil {
		return err
	}
	*f.modes = ms
	return nil
}

// deliveryUsage is --delivery's help text.
const deliveryUsage = "delivery mode between gateway and workers: durable (JetStream: a 202 means stored), core (plain NATS: a 202 means handed to NATS, the lowest latency), or per type quote=core,trade=durable (a type not named gets core, or the bare mode given)"

// queueDelayFlag is --shed-max-queue-delay: a duration for every group
// ("250ms"), or per type ("quote=250ms,trade=5m"), a bare duration among
// them setting the default of the types not named.
type queueDelayFlag struct{ a *gateway.AdmissionOptions }

func (f queueDelayFlag) String() string {
	if f.a == nil || (f.a.Shed.MaxQueueDelay == 0 && len(f.a.QueueDelays) == 0) {
		return "0"
	}
	var parts []string
	if f.a.Shed.MaxQueueDelay != 0 {
		parts = append(parts, f.a.Shed.MaxQueueDelay.String())
	}
	for _, k := range schemas.Kinds {
		if d, ok := f.a.QueueDelays[k]; ok {
			parts = append(parts, k.String()+"="+d.String())
		}
	}
	return strings.Join(parts, ",")
}

func (f queueDelayFlag) Set(v string) error {
	var def time.Duration
	per := map[schemas.Kind]time.Duration{}
	defaults := 0
	for _, part := range strings.Split(v, ",") {
		name, val, typed := strings.Cut(strings.TrimSpace(part), "=")
		if !typed {
			val = name
		}
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || d <= 0 {
			return fmt.Errorf("%q: want a positive duration, or TYPE=DURATION,... (quote=250ms,trade=5m)", part)
		}
		if !typed {
			if defaults++; defaults > 1 {
				return fmt.Errorf("%q: more than one default duration", v)
			}
			def = d
			continue
		}
		k, ok := schemas.ParseKind(strings.TrimSpace(name))
		if !ok {
			return fmt.Errorf("unknown event type %q (want one of %s)", name, kindNames())
		}
		if _, dup := per[k]; dup {
			return fmt.Errorf("type %s named twice", k)
		}
		per[k] = d
	}
	f.a.Shed.MaxQueueDelay = def
	f.a.QueueDelays = per
	return nil
}

// registerDurableFlags registers the gateway's durable publishing flags
// into o: the retry budget, the unacknowledged bound and the ingest
// stream's settings (applied at start when a type is durable).
func registerDurableFlags(fs *flag.FlagSet, o *gateway.DurableOptions) {
	fs.Float64Var(&o.RetryBudget, "retry-budget", gateway.DefaultRetryBudget, "durable delivery: fraction of recent stored batches that may be retried after an ack timeout or a retryable error; past it 503 (keeps a sick cluster from a retry storm)")
	fs.IntVar(&o.MaxPending, "durable-max-pending", bus.DefaultMaxPending, "durable delivery: batches published and not yet acknowledged by the stream at once; past it requests get 503 before their body is read")
	fs.DurationVar(&o.AckTimeout, "durable-ack-timeout", bus.DefaultAckTimeout, "durable delivery: how long a publish waits for the stream's ack before it is retried")
	fs.IntVar(&o.Streams.Replicas, "replicas", 0, replicasUsage)
	fs.DurationVar(&o.Streams.Duplicates, "duplicates", 0, duplicatesUsage)
	fs.Int64Var(&o.Streams.IngestMaxBytes, "ingest-max-bytes", 0, ingestMaxBytesUsage)
	fs.IntVar(&o.Streams.Partitions, "partitions", bus.DefaultPartitions, partitionsUsage)
}

// addIngestCheck adds the readiness check "stream:ingest" when a type is
// durable: the ingest stream exists and has a leader.
func addIngestCheck(srv *ops.Server, gw *gateway.Server, ms bus.Modes) {
	if ms.Any(bus.ModeDurable) {
		srv.AddReady("stream:ingest", gw.CheckIngest)
	}
}
