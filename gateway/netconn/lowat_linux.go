package netconn

import "syscall"

// tcpNotSentLowat is TCP_NOTSENT_LOWAT (linux/tcp.h), which package
// syscall does not name.
const tcpNotSentLowat = 25

// setNotSentLowat sets the socket's TCP_NOTSENT_LOWAT to n and returns
// what it was.
func setNotSentLowat(rc syscall.RawConn, n int) (prev int, err error) {
	if cerr := rc.Control(func(fd uintptr) {
		if prev, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat); err == nil {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, n)
		}
	}); cerr != nil {
		return 0, cerr
	}
	return prev, err
}
