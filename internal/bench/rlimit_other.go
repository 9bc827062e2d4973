//go:build !unix

package bench

import "fmt"

// RaiseFileLimit reports that the open-files limit cannot be raised here.
func RaiseFileLimit(n uint64) error {
	return fmt.Errorf("bench: cannot raise the open-files limit to %d on this system", n)
}
