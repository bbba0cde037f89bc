//go:build !race

package abuse

// slowlorisConns is how many connections TestSlowloris holds: the hostile
// trial's 2,000 (two file descriptors each in this process).
const slowlorisConns = 2000

// raceEnabled says the race detector runs: cases whose outcome depends on
// how fast the server keeps up only log it.
const raceEnabled = false
