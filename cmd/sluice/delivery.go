package main

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// DefaultDelivery is --delivery's default: core for every type (the lead
// flips it to durable once the fault tests pass).
const DefaultDelivery = "core"

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
		return DefaultDelivery
	}
	return f.modes.String()
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
const deliveryUsage = "delivery mode between gateway and workers: core (plain NATS: a 202 means handed to NATS), durable (JetStream: a 202 means stored), or per type quote=core,trade=durable (a type not named gets core, or the bare mode given)"
