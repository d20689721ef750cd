//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package spool

import "os"

// lockDir is a no-op where flock is unavailable: callers must not open one
// Dir twice.
func lockDir(string) (*os.File, error) { return nil, nil }

func unlockDir(*os.File) {}
