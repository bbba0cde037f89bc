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

// rcvBufBeforeConnect sets a socket's receive buffer to n bytes in a
// [net.Dialer]'s Control, before the connection is made, so that the
// window it advertises from its SYN on follows the buffer. Shrunk after
// the connection is made (TCPConn.SetReadBuffer), the buffer is smaller
// than the window already offered: the kernel drops segments the peer
// was allowed to send and the peer retransmits them with backoff, a cost
// no slow client on a real network makes.
func rcvBufBeforeConnect(n int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}); cerr != nil {
			return cerr
		}
		return err
	}
}
