package benchmarks

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel stop the child if the suite dies
// without stopping it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
