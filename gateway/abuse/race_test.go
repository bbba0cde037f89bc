//go:build race

package abuse

// slowlorisConns is how many connections TestSlowloris holds under the
// race detector: its shadow memory for 2,000 connections' goroutines
// (about 220 MB) is not given back, so RSS would never return to the
// baseline.
const slowlorisConns = 200

// raceEnabled says the race detector runs: cases whose outcome depends on
// how fast the server keeps up only log it.
const raceEnabled = true
