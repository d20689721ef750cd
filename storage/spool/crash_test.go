package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	crashDirEnv   = "URBANWATCH_SPOOL_CRASH_DIR"
	crashStartEnv = "URBANWATCH_SPOOL_CRASH_START"
)

func crashPayload(n int64) []byte {
	// Variable length up to ~2 KB, so frames straddle pages and segment
	// boundaries and groups take a measurable time to write.
	return []byte(fmt.Sprintf("seq=%d;%s", n, strings.Repeat("d", int(n%97)*20)))
}

// TestCrashChild is not a test on its own: TestKill9 runs the test binary
// again with this test selected and crashDirEnv set. It appends from several
// goroutines forever and prints each sequence number once its Append has
// returned nil, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9")
	}
	start, err := strconv.ParseInt(os.Getenv(crashStartEnv), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad start:", err)
		os.Exit(2)
	}
	s, err := Open(Options{Dir: dir, SegmentBytes: 32 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var next atomic.Int64
	next.Store(start)
	var mu sync.Mutex
	for range 64 {
		go func() {
			for {
				n := next.Add(1)
				if err := s.Append(crashPayload(n)); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				// One write call per line, so a line is never half-printed.
				_, _ = os.Stdout.WriteString(strconv.FormatInt(n, 10) + "\n")
				mu.Unlock()
			}
		}()
	}
	select {} // until SIGKILL
}

// TestKill9 is the real crash test: a child process appends in a loop and
// reports every acknowledged record; it is killed with SIGKILL mid-stream,
// and every acknowledged record must be found after reopening. Three rounds
// run on the same directory, so recovery of a killed spool is itself killed.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	acked := make(map[int64]bool)
	for round := range 3 {
		start := int64(round) * 1_000_000_000
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.FormatInt(start, 10))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		const killAfter = 3000
		r := bufio.NewReader(stdout)
		count, killed := 0, false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("read child output: %v", err)
				}
				break // an unterminated last line was never fully reported
			}
			n, perr := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			if perr != nil {
				continue // test framework chatter
			}
			acked[n] = true
			count++
			if count == killAfter && !killed {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatalf("kill child: %v", err)
				}
				killed = true
			}
		}
		werr := cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited after %d acks before being killed: %v\n%s", round, count, werr, stderr.String())
		}
		t.Logf("round %d: killed after %d acknowledged appends (kill sent at %d)", round, count, killAfter)

		e := newEnv(t)
		s := e.open(Options{Dir: dir, SegmentBytes: 32 << 10})
		seen := make(map[int64]bool)
		if err := s.Scan(func(p []byte) error {
			var n int64
			if _, err := fmt.Sscanf(string(p), "seq=%d;", &n); err != nil {
				return fmt.Errorf("bad record %q: %w", p, err)
			}
			if !bytes.Equal(p, crashPayload(n)) {
				return fmt.Errorf("record %d damaged: %q", n, p)
			}
			if seen[n] {
				return fmt.Errorf("record %d present twice", n)
			}
			seen[n] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var missing []int64
		for n := range acked {
			if !seen[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			t.Fatalf("round %d: %d acknowledged records lost after kill -9, e.g. %v", round, len(missing), missing[:min(10, len(missing))])
		}
		// The recovered spool accepts appends; the next round checks this one.
		sentinel := start + 900_000_000
		if err := s.Append(crashPayload(sentinel)); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		acked[sentinel] = true
		t.Logf("round %d: %d records on disk, all %d acknowledged ones present", round, len(seen), len(acked)-1)
	}
}
