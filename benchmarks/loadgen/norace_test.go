//go:build !race

package loadgen

// raceEnabled tells tests that the race detector slows this build: they
// skip their upper time bounds.
const raceEnabled = false
