//go:build !linux

package benchmarks

import (
	"os/exec"
	"syscall"
)

func setParentDeathSignal(*exec.Cmd) {}

// raiseNoFile reports no bound of open files where it is not read.
func raiseNoFile() (int, error) { return 1 << 30, nil }

// rcvBufBeforeConnect leaves the receive buffer to the system where it is
// not set.
func rcvBufBeforeConnect(int) func(network, address string, c syscall.RawConn) error { return nil }
