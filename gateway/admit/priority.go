package admit

import "strings"

// Priority orders requests for shedding: lower priorities are shed first.
type Priority uint8

// The priorities, lowest first.
const (
	Low Priority = iota
	Normal
	High
	Critical
	numPriorities
)

// Priorities lists every priority, lowest first.
var Priorities = []Priority{Low, Normal, High, Critical}

var priorityNames = [numPriorities]string{"low", "normal", "high", "critical"}

// String returns the priority's name.
func (p Priority) String() string {
	if p < numPriorities {
		return priorityNames[p]
	}
	return "unknown"
}

// ParsePriority parses a priority name, case-insensitively.
func ParsePriority(s string) (Priority, bool) {
	for i, n := range priorityNames {
		if strings.EqualFold(s, n) {
			return Priority(i), true
		}
	}
	return Normal, false
}

// Effective returns the priority a request gets: the one it asked for
// (default Normal), lowered to the client's maximum. A client may lower its
// priority but never raise it above what its credentials allow.
func Effective(asked string, max Priority) (Priority, bool) {
	p := Normal
	if asked != "" {
		var ok bool
		if p, ok = ParsePriority(asked); !ok {
			return Normal, false
		}
	}
	if p > max {
		p = max
	}
	return p, true
}
