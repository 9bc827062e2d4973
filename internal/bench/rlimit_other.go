//go:build !unix

package bench

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit reports that the open-files limit cannot be raised here.
func RaiseFileLimit(n uint64) error {
	return fmt.Errorf("bench: cannot raise the open-files limit to %d on this system", n)
}

// FileLimit returns 0: the limit on open files is unknown here.
func FileLimit() uint64 { return 0 }

// smallReceiveBuffer leaves the socket as it is here.
func smallReceiveBuffer(_, _ string, _ syscall.RawConn) error { return nil }
