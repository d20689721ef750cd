package testenv_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/influx"
)

func TestFreePort(t *testing.T) {
	p := testenv.FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("FreePort returned %d, which cannot be listened on: %v", p, err)
	}
	l.Close()
}

func TestWaitForReturnsOnceTrue(t *testing.T) {
	n := 0
	testenv.WaitFor(t, 5*time.Second, func() bool { n++; return n == 3 }, "never")
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
}

// fatalRecorder captures Fatalf and ends the calling goroutine, as testing does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Skipf(format string, args ...any) {
	f.msg = "skip: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestInfluxdMissingSkipsOrFails(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no influxd installed there
	for _, tc := range []struct{ require, prefix string }{
		{"", "skip: SKIPPED INTEGRATION: influxd"},
		{"1", "influxd (InfluxDB 1.8.10) is required"},
	} {
		t.Setenv(testenv.RequireEnv, tc.require)
		rec := &fatalRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			testenv.Influxd(rec)
		}()
		<-done
		if !strings.HasPrefix(rec.msg, tc.prefix) || !strings.Contains(rec.msg, "go install "+influx.InfluxdPackage) {
			t.Errorf("%s=%q: message %q, want prefix %q and the install command", testenv.RequireEnv, tc.require, rec.msg, tc.prefix)
		}
	}
}

func TestWaitForFailsWithMessage(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testenv.WaitFor(rec, 20*time.Millisecond, func() bool { return false }, "the thing happened")
	}()
	<-done
	if !strings.Contains(rec.msg, "the thing happened") || !strings.Contains(rec.msg, "timed out") {
		t.Errorf("Fatalf message %q, want a timeout naming the condition", rec.msg)
	}
}

// mqttConnect sends an MQTT 3.1.1 CONNECT and returns the CONNACK return code.
func mqttConnect(t *testing.T, addr string) byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	connect := []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 2, 't', 'e'}
	if _, err := c.Write(connect); err != nil {
		t.Fatalf("write CONNECT: %v", err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		t.Fatalf("got % x, want a CONNACK", ack)
	}
	return ack[3]
}

func TestStartMosquittoAnonymous(t *testing.T) {
	addr := testenv.StartMosquitto(t, "")
	if rc := mqttConnect(t, addr); rc != 0 {
		t.Errorf("anonymous CONNECT return code %d, want 0 (accepted)", rc)
	}
}

func TestStartMosquittoExtraConf(t *testing.T) {
	addr := testenv.StartMosquitto(t, "allow_anonymous false")
	if rc := mqttConnect(t, addr); rc != 5 {
		t.Errorf("anonymous CONNECT return code %d, want 5 (not authorized)", rc)
	}
}

func ping(url string) bool {
	resp, err := http.Get(url + "/ping")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusNoContent
}

func TestInfluxdKillRestart(t *testing.T) {
	m := testenv.Influxd(t)
	url := m.URL()
	if !ping(url) {
		t.Fatal("influxd does not answer /ping after Influxd")
	}
	write := func(line string) {
		t.Helper()
		resp, err := http.Post(url+"/write?db="+m.Database(), "text/plain", bytes.NewBufferString(line))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: HTTP %d", resp.StatusCode)
		}
	}
	write("probe v=1 1700000000000000000")

	if err := m.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if ping(url) {
		t.Fatal("influxd still answers after Kill")
	}
	if err := m.Kill(); err != nil {
		t.Errorf("second Kill: %v, want a no-op", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if m.URL() != url || !ping(url) {
		t.Fatalf("after Restart: URL %s (was %s), ping %v", m.URL(), url, ping(url))
	}
	// The point acknowledged before the crash survived it (WAL).
	n, err := influx.CountPoints(ctx, url, m.Database(), "probe", "v")
	if err != nil || n != 1 {
		t.Errorf("probe count after crash and restart = %d, %v; want 1", n, err)
	}
	// Restart of a running instance stops it gracefully first.
	if err := m.Restart(ctx); err != nil {
		t.Fatalf("Restart while running: %v", err)
	}
	if !ping(url) {
		t.Fatal("no /ping after the second Restart")
	}
}
