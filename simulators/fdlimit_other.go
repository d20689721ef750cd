//go:build !unix

package simulators

// openFileLimit is unknown off unix.
func openFileLimit() uint64 { return 0 }
