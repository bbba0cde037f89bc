//go:build !linux

package netconn

import "syscall"

// setNotSentLowat does nothing: TCP_NOTSENT_LOWAT is set on Linux only.
func setNotSentLowat(syscall.RawConn, int) (int, error) { return 0, nil }
