//go:build unix

package simulators

import "syscall"

// openFileLimit returns the process's soft limit on open files, or 0 if
// unknown. (Go raises the soft limit to the hard one at start-up.)
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}
