//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the soft limit on open files to at least n (a
// thousand connections need two descriptors each in one process, client
// and server), as far as the hard limit allows. It returns an error when
// the limit stays below n.
func RaiseFileLimit(n uint64) error {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Errorf("bench: getrlimit: %w", err)
	}
	if r.Cur >= n {
		return nil
	}
	r.Cur = min(n, r.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Errorf("bench: setrlimit: %w", err)
	}
	if r.Cur < n {
		return fmt.Errorf("bench: open files limited to %d by the hard limit, need %d", r.Cur, n)
	}
	return nil
}

// FileLimit returns the soft limit on open files, or 0 when unknown.
func FileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}

// smallReceiveBuffer is a net.Dialer Control function that sets a socket's
// receive buffer to its minimum before it connects, so that the TCP
// window it offers stays small: a client that does not read then fills
// the server's side within a few dozen kilobytes.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
	}); cerr != nil {
		return cerr
	}
	return err
}
