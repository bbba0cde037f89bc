//go:build !linux

package benchmarks

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}

// raiseNoFile reports no bound of open files where it is not read.
func raiseNoFile() (int, error) { return 1 << 30, nil }
