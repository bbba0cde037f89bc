package bus

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/schemas"
)

// Mode is a delivery mode: how the messages of one event type travel
// between the gateway and the workers.
type Mode uint8

// The delivery modes. The zero Mode is ModeCore.
const (
	// ModeCore is plain NATS ([Core], [Queue]): a publish is done once the
	// message is handed to the client; a message nobody receives is lost.
	ModeCore Mode = iota
	// ModeDurable is JetStream ([Durable], [Pull]): a publish is done once
	// the stream has stored the message; consumers ack what they processed.
	ModeDurable
)

// String returns "core" or "durable".
func (m Mode) String() string {
	switch m {
	case ModeCore:
		return "core"
	case ModeDurable:
		return "durable"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode maps "core" or "durable" to its Mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "core":
		return ModeCore, nil
	case "durable":
		return ModeDurable, nil
	}
	return ModeCore, fmt.Errorf("unknown delivery mode %q (want core or durable)", s)
}

// Modes is a delivery mode per event type, indexed by [schemas.Kind]. The
// zero Modes is core for every type.
type Modes [schemas.KindTrade + 1]Mode

// AllModes returns Modes with m for every known type.
func AllModes(m Mode) Modes {
	var ms Modes
	for _, k := range schemas.Kinds {
		ms[k] = m
	}
	return ms
}

// Of returns the mode of type k (ModeCore for an unknown k).
func (ms Modes) Of(k schemas.Kind) Mode {
	if int(k) >= len(ms) {
		return ModeCore
	}
	return ms[k]
}

// Any reports whether some known type has mode m.
func (ms Modes) Any(m Mode) bool {
	for _, k := range schemas.Kinds {
		if ms[k] == m {
			return true
		}
	}
	return false
}

// Kinds returns the known types whose mode is m, in [schemas.Kinds] order.
func (ms Modes) Kinds(m Mode) []schemas.Kind {
	var ks []schemas.Kind
	for _, k := range schemas.Kinds {
		if ms[k] == m {
			ks = append(ks, k)
		}
	}
	return ks
}

// String returns the mode when every type has the same ("core"), else each
// type's ("quote=core,trade=durable"), the forms the --delivery flag takes.
func (ms Modes) String() string {
	first := ms.Of(schemas.Kinds[0])
	same := true
	for _, k := range schemas.Kinds {
		same = same && ms[k] == first
	}
	if same {
		return first.String()
	}
	var b strings.Builder
	for i, k := range schemas.Kinds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k.String())
		b.WriteByte('=')
		b.WriteString(ms[k].String())
	}
	return b.String()
}
