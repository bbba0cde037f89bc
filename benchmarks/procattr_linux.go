package benchmarks

import (
	"fmt"
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel stop the child if the suite dies
// without stopping it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// raiseNoFile raises this process's soft limit of open files to its hard
// limit (Go does so at start-up too, but a parent may have lowered it
// since) and returns it.
func raiseNoFile() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("fanout: reading ulimit -n: %w", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("fanout: raising ulimit -n to %d: %w", rl.Max, err)
		}
	}
	return int(min(rl.Cur, 1<<30)), nil
}
