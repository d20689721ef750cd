package influx_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// describe renders every field ReadRecords rebuilds, times in UTC.
func describe(r *telemetry.Record) string {
	return fmt.Sprintf("%s %s seq=%d ts=%s rcv=%s late=%v fix=%+v sensors=%+v rain=%+v depth=%+v",
		r.Kind, r.Device, r.Seq, r.TS.UTC().Format(time.RFC3339Nano), r.Received.UTC().Format(time.RFC3339Nano),
		r.Late, r.Fix, r.Sensors, r.Rain, r.Depth)
}

// writeLines posts line protocol to a 1.x /write.
func writeLines(t *testing.T, url, db string, lines []string) {
	t.Helper()
	resp, err := http.Post(url+"/write?db="+db+"&precision=ns", "text/plain", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: HTTP %d", resp.StatusCode)
	}
}

func TestIntegrationReadRecords(t *testing.T) {
	m := testenv.Influxd(t)
	base := time.Date(2026, 11, 24, 21, 0, 0, 0, time.FixedZone("CST", 8*3600))
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	rec := func(k telemetry.Kind, dev string, seq uint64, ts float64, delay time.Duration) telemetry.Record {
		return telemetry.Record{Kind: k, Header: telemetry.Header{Device: dev, Seq: seq, TS: at(ts), Received: at(ts).Add(delay)}}
	}
	gps := func(dev string, seq uint64, ts float64, delay time.Duration) telemetry.Record {
		r := rec(telemetry.KindGPS, dev, seq, ts, delay)
		r.Fix = telemetry.Fix{Lat: 36.7065, Lon: 119.1617, SpeedKmh: 32.5, Heading: 271, Sats: 11, Valid: true}
		return r
	}
	// The records, in the order ReadRecords must deliver them with a
	// one-minute window over [base, base+2m).
	s1 := rec(telemetry.KindSensors, "T1", 7, 5, 30*time.Second) // arrives at 0:35, after the fix below
	s1.Late = true
	s1.Sensors = telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown, LoadKg: 18500, HasLoad: true}
	s2 := rec(telemetry.KindSensors, "T2", 3, 20, 0) // no load sensor
	s2.Sensors = telemetry.SensorState{Cover: telemetry.CoverOpen, Body: telemetry.BodyRaised}
	rain := rec(telemetry.KindRain, "G1", 77, 30, 40*time.Millisecond)
	rain.Rain = telemetry.RainReading{MM: 1.4, IntervalS: 60}
	depth := rec(telemetry.KindDepth, "D1", 9, 40, 0)
	depth.Depth = telemetry.DepthReading{DepthCM: 17.5}
	want := []telemetry.Record{
		gps("T1", 100, 10, 100*time.Millisecond), // 0:10.1
		s2,                                       // 0:20
		rain,                                     // 0:30.04
		s1,                                       // 0:35
		depth,                                    // 0:40
		gps("T2", 5, 59, 2*time.Minute),          // arrives 2:59, delivered with its window
		// second window
		gps("T1", 101, 70, 200*time.Millisecond),
		gps("T3", 1, 75, 0), // T3 and T4 share arrival and ts: by device
		gps("T4", 1, 75, 0),
	}
	var lines []string
	for i := range want {
		lines = append(lines, string(influx.AppendLine(nil, &want[i])))
	}
	outside := []telemetry.Record{gps("T1", 99, -1, 0), gps("T1", 102, 120, 0)}
	for i := range outside {
		lines = append(lines, string(influx.AppendLine(nil, &outside[i])))
	}
	// A point urbanwatch did not write: no seq.
	lines = append(lines, fmt.Sprintf("truck_gps,device=X lat=1,lon=2 %d", at(50).UnixNano()))
	writeLines(t, m.URL(), m.Database(), lines)

	var skipped []string
	o := influx.ReadOptions{URL: m.URL(), Database: m.Database(), From: base, To: base.Add(2 * time.Minute),
		Window: time.Minute, PageRows: 2, // small pages: ties at 1:15 take the OFFSET path
		Skipped: func(meas string, ts time.Time, err error) {
			skipped = append(skipped, fmt.Sprintf("%s %s: %v", meas, ts.Sub(base), err))
		}}
	var got []string
	err := influx.ReadRecords(context.Background(), o, func(r *telemetry.Record) error {
		got = append(got, describe(r))
		return nil
	})
	if err != nil {
		t.Fatalf("ReadRecords: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("read %d records, want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = describe(&want[i])
		}
		if g != w {
			t.Errorf("record %d:\n got %s\nwant %s", i, g, w)
		}
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "truck_gps 50s: no seq") {
		t.Errorf("skipped %q, want the point without seq at 50s", skipped)
	}

	// The same read with a retention policy named and default paging.
	o.RetentionPolicy, o.PageRows, o.Window, o.Skipped = "autogen", 0, 0, nil
	n := 0
	if err := influx.ReadRecords(context.Background(), o, func(*telemetry.Record) error { n++; return nil }); err != nil {
		t.Fatalf("ReadRecords with autogen: %v", err)
	}
	if n != len(want) {
		t.Errorf("one window: %d records, want %d", n, len(want))
	}

	// fn's error stops the read and comes back unchanged.
	stop := fmt.Errorf("enough")
	n = 0
	err = influx.ReadRecords(context.Background(), o, func(*telemetry.Record) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("fn error: got %v after %d records, want %v after 1", err, n, stop)
	}

	o.Database = "missing"
	if err := influx.ReadRecords(context.Background(), o, func(*telemetry.Record) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "database not found") {
		t.Errorf("missing database: %v, want database not found", err)
	}
}

func TestReadRecordsRejectsBadRange(t *testing.T) {
	now := time.Now()
	for _, o := range []influx.ReadOptions{
		{URL: "http://127.0.0.1:1", Database: "d", From: now, To: now},
		{URL: "http://127.0.0.1:1", Database: "d", From: now},
		{Database: "d", From: now, To: now.Add(time.Hour)},
	} {
		if err := influx.ReadRecords(context.Background(), o, func(*telemetry.Record) error { return nil }); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
