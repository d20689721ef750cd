package app

import (
	"os"
	"runtime"
)

// SpareFsyncProc raises GOMAXPROCS by one above its default and returns a
// function that puts it back. It does nothing (and restore does nothing) when
// the GOMAXPROCS environment variable sets the value explicitly.
//
// Durability is paid in fdatasync calls, 0.2–2 ms each, made by the spool's
// and the alert journal's committers. Go counts a goroutine blocked in a
// system call as still holding its P until the scheduler's monitor notices and
// hands the P on, and getting it back costs another hand-off, so on a 2-core
// machine an fsync in flight keeps one of two Ps from running ready work for
// much of its duration: the CPU shows idle and I/O wait while connections
// queue. One P more than there are cores lets the rest of the service use
// both cores while a committer waits on the disk. Measured with
// BenchmarkIngestEndToEnd (1,000 connections, one message in flight each):
// about 1.2× the acknowledged msg/s (docs/benchmarks.md).
//
// `urbanwatch serve` calls it at start; the benchmarks call it too so that
// they measure what serve runs.
//
// Under a CPU limit below the machine's CPU count (a container's quota,
// which Go's default GOMAXPROCS already follows) it does nothing either: a P
// above the quota would have the kernel throttle the process in every period
// it is busy. restore hands GOMAXPROCS back to the runtime's default, which
// keeps following the limit.
func SpareFsyncProc() (restore func()) {
	n := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || n < runtime.NumCPU() {
		return func() {}
	}
	runtime.GOMAXPROCS(n + 1)
	return runtime.SetDefaultGOMAXPROCS
}
