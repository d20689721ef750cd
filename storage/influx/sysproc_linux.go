//go:build linux

package influx

import "syscall"

// sysProcAttr puts influxd in its own process group, so a terminal's Ctrl-C
// reaches only urbanwatch (which then stops influxd gracefully), and has the
// kernel send it SIGTERM should urbanwatch die without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
