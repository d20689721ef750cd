package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/urbanwatch/urbanwatch/config"
	"github.com/urbanwatch/urbanwatch/ingest/jt808"
	"github.com/urbanwatch/urbanwatch/simulators/jt808client"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

const jt808Registry = `
fleets:
  - prefix: T
    class: trucks
    count: 4
    width: 1
    key: app-test-fleet-key-0123
    jt808: {phone_prefix: "0138"}
`

// runJT808App runs the whole service on dir (kept across runs) with the
// gateway on a free loopback port and the rules of testCity; stop ends it.
func runJT808App(t *testing.T, dir, influxURL string) (a *App, stop func()) {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "registry.yaml"), []byte(jt808Registry), 0o600)
	os.WriteFile(filepath.Join(dir, "urbanwatch.yaml"), fmt.Appendf(nil,
		"registry: registry.yaml\ndata_dir: data\nhttp: {listen: 127.0.0.1:0}\nmqtt: {listen: 127.0.0.1:0}\n"+
			"influx: {url: %q}\njt808: {listen: 127.0.0.1:0}\n", influxURL), 0o600)
	cfg, err := config.Load(filepath.Join(dir, "urbanwatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := config.LoadRegistry(cfg.Registry)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan *App, 1)
	a, err = New(Options{Config: cfg, Registry: reg, City: testCity(t, reg),
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Ready: func(a *App) { ready <- a }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("app stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("app not ready in 30s")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// metric returns the value of a counter or gauge with one label (or none).
func metric(t *testing.T, a *App, name, label, value string) float64 {
	t.Helper()
	mfs, err := a.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if match {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJT808EndToEnd: a terminal over TCP registers, authenticates, reports
// and back-fills; every report is answered only once durable, reaches the
// spool and the rules, and a report sent again after its reply was lost —
// on a new connection, and after a restart — is recognised and not stored
// twice.
func TestJT808EndToEnd(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()
	dir := t.TempDir()
	a, stop := runJT808App(t, dir, sink.URL)
	if a.JT808Addr() == "" {
		t.Fatal("no jt808 address")
	}
	ctx := context.Background()
	dial := func(a *App) *jt808client.Client {
		c, err := jt808client.Dial(ctx, a.JT808Addr(), jt808client.Options{Phone: "013800000001", Version: jt808.V2019})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := dial(a)
	// Before authenticating, reports are refused.
	now := time.Now().Truncate(time.Second)
	fix := func(at time.Time, cover telemetry.Cover) jt808.Location {
		rec := telemetry.Record{Kind: telemetry.KindGPS, Header: telemetry.Header{TS: at},
			Fix: telemetry.Fix{Lat: 36.71, Lon: 119.16, SpeedKmh: 30, Heading: 90, Sats: 9, Valid: true}}
		return jt808client.Location(&rec, &telemetry.SensorState{Cover: cover, Body: telemetry.BodyDown, LoadKg: 18000, HasLoad: true})
	}
	first := fix(now.Add(-30*time.Second), telemetry.CoverClosed)
	if r, err := c.Report(&first); err != nil || r != jt808.ResultFailure {
		t.Fatalf("report before authentication: %d %v", r, err)
	}
	// Registration never hands out the code; the terminal was provisioned
	// with it (here: derived from the fleet key).
	rr, err := c.Register(jt808.Register{Province: 37, City: 700, Maker: "UWSIM", Model: "E2E", TerminalID: "T1"})
	if err != nil || rr.Result != jt808.RegisterTerminalTaken || rr.AuthCode != "" {
		t.Fatalf("register %+v %v", rr, err)
	}
	reg, err := config.ParseRegistry("registry.yaml", []byte(jt808Registry))
	if err != nil {
		t.Fatal(err)
	}
	rr.AuthCode, _ = reg.JT808AuthCode("T1")
	if err := c.Authenticate(rr.AuthCode); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Report(&first); err != nil || r != jt808.ResultOK {
		t.Fatalf("report: %d %v", r, err)
	}
	if got := a.Ingester().Accepted(); got != 2 {
		t.Fatalf("accepted %d after one report, want 2 (gps and sensors)", got)
	}
	// A tunnel's worth of stored points, back-filled in one 0x0704.
	var stored []jt808.Location
	for i := 3; i >= 1; i-- {
		stored = append(stored, fix(first.Time.Add(-time.Duration(i)*time.Second), telemetry.CoverClosed))
	}
	if r, err := c.Backfill(stored); err != nil || r != jt808.ResultOK {
		t.Fatalf("backfill: %d %v", r, err)
	}
	if got := a.Ingester().Accepted(); got != 8 {
		t.Fatalf("accepted %d after the batch, want 8", got)
	}

	// Kill: the terminal sends a report and its connection dies before the
	// reply. It was stored; sent again on a new connection it is answered
	// and not stored twice.
	lost := fix(now.Add(-10*time.Second), telemetry.CoverOpen)
	if _, err := c.Send(jt808.MsgLocation, jt808.AppendLocation(nil, &lost)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "the unanswered report to be stored", func() bool { return a.Ingester().Accepted() == 10 })
	c = dial(a)
	if err := c.Authenticate(rr.AuthCode); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Report(&lost); err != nil || r != jt808.ResultOK {
		t.Fatalf("resend: %d %v", r, err)
	}
	if got := a.Ingester().Accepted(); got != 10 {
		t.Fatalf("accepted %d after the resend, want still 10", got)
	}
	if d := metric(t, a, "urbanwatch_ingest_duplicates_total", "kind", "gps"); d != 1 {
		t.Fatalf("gps duplicates %v, want 1", d)
	}
	waitFor(t, "the rules to see every record", func() bool {
		return metric(t, a, "urbanwatch_rules_records_total", "kind", "gps")+
			metric(t, a, "urbanwatch_rules_skipped_total", "reason", "late") >= 5
	})
	if n := metric(t, a, "urbanwatch_jt808_frames_total", "msg_id", "0x0200"); n != 4 {
		t.Fatalf("0x0200 frames %v, want 4", n)
	}
	if n := metric(t, a, "urbanwatch_jt808_auth_failures_total", "reason", "not_authenticated"); n != 1 {
		t.Fatalf("not_authenticated %v, want 1", n)
	}
	// A broken frame is counted and kept in the dead letters; the
	// connection goes on.
	raw, _ := jt808.AppendFrame(nil, jt808.Header{MsgID: jt808.MsgHeartbeat, Phone: "13800000001"}, nil)
	raw[len(raw)-2] ^= 0x20
	nc, err := net.Dial("tcp", a.JT808Addr())
	if err != nil {
		t.Fatal(err)
	}
	nc.Write(raw)
	nc.Close()
	waitFor(t, "the bad frame in the dead letters", func() bool {
		b, _ := os.ReadFile(a.DeadLetterPath())
		return strings.Contains(string(b), `"reason":"jt808_checksum"`)
	})
	if n := metric(t, a, "urbanwatch_jt808_frames_rejected_total", "reason", "checksum"); n != 1 {
		t.Fatalf("checksum rejects %v, want 1", n)
	}
	if err := c.Heartbeat(); err != nil {
		t.Fatal(err)
	}
	stop()

	// Restart on the same data: the report is still recognised (dedup is
	// rebuilt from the spool), and new ones are stored.
	a, _ = runJT808App(t, dir, sink.URL)
	c = dial(a)
	if err := c.Authenticate(rr.AuthCode); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Report(&lost); err != nil || r != jt808.ResultOK {
		t.Fatalf("resend after restart: %d %v", r, err)
	}
	if got := a.Ingester().Accepted(); got != 0 {
		t.Fatalf("the resent report was stored again after a restart (%d)", got)
	}
	next := fix(now, telemetry.CoverOpen)
	if r, err := c.Report(&next); err != nil || r != jt808.ResultOK || a.Ingester().Accepted() != 2 {
		t.Fatalf("new report after restart: %d %v, accepted %d", r, err, a.Ingester().Accepted())
	}
}
