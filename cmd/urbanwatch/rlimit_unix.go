//go:build unix

package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// raiseFileLimit lifts the open-file limit as far as the system allows: each
// device is a TCP connection, and a city's 20,000 trucks outgrow the usual
// 1,024 soft and often the hard limit. Go raises the soft limit to the hard
// one by itself; a privileged process may also raise the hard one, up to
// fs.nr_open. It returns the limit in force.
func raiseFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	want := uint64(1 << 20)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n < want {
			want = n
		}
	}
	if rl.Max < want {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err == nil {
			return want
		}
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}
