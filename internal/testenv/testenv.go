// Package testenv starts the external services urbanwatch's integration tests
// need (InfluxDB 1.8, Mosquitto) and holds the one sanctioned polling helper.
//
// Missing binaries skip the test with a message starting "SKIPPED
// INTEGRATION:" that names the install command, unless the environment sets
// URBANWATCH_REQUIRE_INTEGRATION=1 (CI does), in which case the test fails.
// Tests never install anything themselves.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/storage/influx"
)

// RequireEnv is the environment variable that turns missing integration
// binaries from a skip into a failure when set to "1".
const RequireEnv = "URBANWATCH_REQUIRE_INTEGRATION"

// MosquittoInstallHint is the command that installs Mosquitto (Debian/Ubuntu).
const MosquittoInstallHint = "apt-get install -y mosquitto mosquitto-clients"

// TestDatabase is the database Influxd creates.
const TestDatabase = "urbanwatch"

// missing skips or fails t because binary what is not installed.
func missing(t testing.TB, what, install string, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s is required (%s=1) but not available: %v\n  install it with: %s", what, RequireEnv, err, install)
	}
	t.Skipf("SKIPPED INTEGRATION: %s not available (%v)\n  install it with: %s\n  (set %s=1 to make this a failure)",
		what, err, install, RequireEnv)
}

// Influxd starts a managed InfluxDB 1.8 (storage/influx.StartManaged) with its
// data in t.TempDir() and database TestDatabase, and stops it when the test
// ends. influxd must already be installed in influx.DefaultBinDir(); if not,
// the test is skipped (or fails, see RequireEnv). influxd's output goes to the
// test log only if the test fails.
func Influxd(t testing.TB) *influx.Managed {
	t.Helper()
	if _, err := influx.InfluxdBinary(""); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			missing(t, "influxd (InfluxDB 1.8.10)", influx.InstallHint, err)
		}
		t.Fatalf("testenv: %v", err)
	}
	out := &SyncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := influx.StartManaged(ctx, influx.ManagedOptions{
		DataDir:  t.TempDir(),
		Database: TestDatabase,
		Stdout:   out,
	})
	if err != nil {
		t.Fatalf("testenv: start influxd: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("testenv: stop influxd: %v", err)
		}
		if t.Failed() {
			t.Logf("influxd output:\n%s", out.String())
		}
	})
	return m
}

// MosquittoPath returns the path of the mosquitto broker, searching PATH and
// then /usr/sbin and /usr/local/sbin. If it is not installed, the test is
// skipped (or fails, see RequireEnv).
func MosquittoPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("mosquitto")
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, "mosquitto")
		if st, serr := os.Stat(p); serr == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	missing(t, "mosquitto", MosquittoInstallHint, err)
	return ""
}

// StartMosquitto starts a Mosquitto broker listening on 127.0.0.1 at a free
// port and returns its address "127.0.0.1:port". The generated configuration
// has persistence off and allow_anonymous true, unless extraConf (appended
// verbatim, may be empty) sets allow_anonymous itself; when run as root it
// keeps root ("user root", unless extraConf sets user) so that files in
// t.TempDir() stay readable. The broker is killed when the test ends; its log
// goes to the test log if the test fails.
func StartMosquitto(t testing.TB, extraConf string) (addr string) {
	t.Helper()
	bin := MosquittoPath(t)
	port := FreePort(t)
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\npersistence false\nlog_dest stderr\n", port)
	if !confSets(extraConf, "allow_anonymous") {
		conf.WriteString("allow_anonymous true\n")
	}
	if os.Geteuid() == 0 && !confSets(extraConf, "user") {
		conf.WriteString("user root\n")
	}
	if extraConf != "" {
		conf.WriteString(extraConf)
		conf.WriteString("\n")
	}
	path := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatalf("testenv: write mosquitto config: %v", err)
	}

	out := &SyncBuffer{}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("mosquitto config:\n%s\nmosquitto output:\n%s", conf.String(), out.String())
		}
	})
	WaitFor(t, 10*time.Second, func() bool {
		select {
		case <-done:
			t.Fatalf("testenv: mosquitto exited during start-up (%s):\n%s\nconfig:\n%s", cmd.ProcessState, out.String(), conf.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "mosquitto did not accept connections on "+addr)
	return addr
}

// confSets reports whether a Mosquitto config sets option key.
func confSets(conf, key string) bool {
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == key {
			return true
		}
	}
	return false
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor calls cond every few milliseconds until it returns true, and fails
// the test with msg if that has not happened within timeout. It is the one
// sanctioned way for tests to wait for something asynchronous; call it from
// the test's goroutine.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, msg)
		}
		time.Sleep(interval)
		interval = min(2*interval, 50*time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a process's
// output, a logger written from many goroutines); String reads it whole.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Missing skips t loudly (or fails it under RequireEnv) because what is not
// available; install says how to get it.
func Missing(t testing.TB, what, install string, err error) {
	t.Helper()
	missing(t, what, install, err)
}
