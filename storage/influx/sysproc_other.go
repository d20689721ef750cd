//go:build !linux

package influx

import "syscall"

// sysProcAttr returns nil: no parent-death signal outside Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }
