package influx_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// aggTo ends the aggregates below: 13:17:42 UTC, so hour and ten-minute
// buckets ending on it are not aligned to the clock.
var aggTo = time.Date(2026, 11, 24, 21, 17, 42, 0, time.FixedZone("CST", 8*3600))

// hms is aggTo's day at h:m:s plus ns nanoseconds, in aggTo's zone.
func hms(h, m, s, ns int) time.Time {
	return time.Date(2026, 11, 24, h, m, s, ns, aggTo.Location())
}

func rainAt(dev string, seq uint64, ts time.Time, mm float64) telemetry.Record {
	return telemetry.Record{Kind: telemetry.KindRain, Header: telemetry.Header{Device: dev, Seq: seq, TS: ts, Received: ts},
		Rain: telemetry.RainReading{MM: mm, IntervalS: 60}}
}

func depthAt(dev string, seq uint64, ts time.Time, cm float64) telemetry.Record {
	return telemetry.Record{Kind: telemetry.KindDepth, Header: telemetry.Header{Device: dev, Seq: seq, TS: ts, Received: ts},
		Depth: telemetry.DepthReading{DepthCM: cm}}
}

// writeRecords stores recs in m's database as the writer would (AppendLine).
func writeRecords(t *testing.T, m *influx.Managed, recs []telemetry.Record) {
	t.Helper()
	lines := make([]string, len(recs))
	for i := range recs {
		lines[i] = string(influx.AppendLine(nil, &recs[i]))
	}
	writeLines(t, m.URL(), m.Database(), lines)
}

// sameBuckets reports whether got and want hold the same values, NaN
// matching NaN only.
func sameBuckets(got, want []float64) bool {
	return slices.EqualFunc(got, want, func(a, b float64) bool {
		return a == b || math.IsNaN(a) && math.IsNaN(b)
	})
}

// checkAggregate compares Aggregate's result with want, device by device.
func checkAggregate(t *testing.T, label string, got, want map[string][]float64) {
	t.Helper()
	for dev, w := range want {
		g, ok := got[dev]
		if !ok {
			t.Errorf("%s: device %q missing (got devices %q)", label, dev, keys(got))
			continue
		}
		if !sameBuckets(g, w) {
			t.Errorf("%s: device %q buckets %v, want %v", label, dev, g, w)
		}
	}
	for dev, g := range got {
		if _, ok := want[dev]; !ok {
			t.Errorf("%s: unexpected device %q with buckets %v", label, dev, g)
		}
	}
}

func keys(m map[string][]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestIntegrationAggregateSumRain(t *testing.T) {
	m := testenv.Influxd(t)
	nan := math.NaN()
	// Buckets: [18:17:42, 19:17:42), [19:17:42, 20:17:42), [20:17:42, 21:17:42).
	// Powers of two make every sum name the points in it, exactly.
	recs := []telemetry.Record{
		rainAt("WF-R01", 1, hms(18, 17, 41, 999_999_999), 1024), // just before To−3h: out
		rainAt("WF-R01", 2, hms(18, 17, 42, 0), 1),              // exactly To−3h: bucket 0
		rainAt("WF-R01", 3, hms(19, 0, 0, 0), 2),                // clock hour 19 but bucket 0
		rainAt("WF-R01", 4, hms(19, 17, 41, 999_999_999), 4),    // last instant of bucket 0
		rainAt("WF-R01", 5, hms(19, 17, 42, 0), 8),              // first instant of bucket 1
		rainAt("WF-R01", 6, hms(20, 0, 0, 0), 16),               // bucket 1
		rainAt("WF-R01", 7, hms(20, 17, 41, 500_000_000), 32),   // bucket 1; bucket 2 stays empty
		rainAt("WF-R01", 8, hms(21, 17, 42, 0), 2048),           // exactly To: out
		rainAt("WF-R'01", 1, hms(18, 20, 0, 0), 1),              // bucket 0
		rainAt("WF-R'01", 2, hms(19, 10, 0, 0), 2),              // bucket 0; bucket 1 empty
		rainAt("WF-R'01", 3, hms(20, 17, 42, 0), 0.5),           // bucket 2
		rainAt("WF-R'01", 4, hms(21, 0, 0, 0), 0.25),            // bucket 2
		rainAt("WF-R'01", 5, hms(21, 17, 41, 999_999_999), 0.125),
		rainAt("WF-R02", 1, hms(18, 0, 0, 0), 1),   // before the range
		rainAt("WF-R02", 2, hms(21, 17, 42, 0), 1), // at To
		rainAt("WF-R02", 3, hms(22, 0, 0, 0), 1),   // after To
	}
	writeRecords(t, m, recs)
	// Another measurement's devices are not rain gauges.
	writeRecords(t, m, []telemetry.Record{depthAt("WF-D01", 1, hms(20, 0, 0, 0), 12)})

	want := map[string][]float64{
		"WF-R01":  {1 + 2 + 4, 8 + 16 + 32, nan},
		"WF-R'01": {1 + 2, nan, 0.5 + 0.25 + 0.125},
	}
	o := influx.AggregateOptions{URL: m.URL(), Database: m.Database(), Measurement: "gauge_rain", Field: "mm",
		Func: "sum", To: aggTo, Bucket: time.Hour, N: 3}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		label string
		edit  func(*influx.AggregateOptions)
	}{
		{"To in CST", func(*influx.AggregateOptions) {}},
		{"To in UTC", func(o *influx.AggregateOptions) { o.To = aggTo.UTC() }},
		{"To with a fraction of a second", func(o *influx.AggregateOptions) { o.To = aggTo.Add(900 * time.Millisecond) }},
		{"retention policy autogen", func(o *influx.AggregateOptions) { o.RetentionPolicy = "autogen" }},
	} {
		oc := o
		c.edit(&oc)
		got, err := influx.Aggregate(ctx, oc)
		if err != nil {
			t.Fatalf("%s: Aggregate: %v", c.label, err)
		}
		checkAggregate(t, c.label, got, want)
	}

	// One bucket of the whole three hours: the same edges, one sum.
	o.Bucket, o.N = 3*time.Hour, 1
	got, err := influx.Aggregate(ctx, o)
	if err != nil {
		t.Fatalf("one 3h bucket: Aggregate: %v", err)
	}
	checkAggregate(t, "one 3h bucket", got, map[string][]float64{"WF-R01": {63}, "WF-R'01": {3.875}})

	// Nothing in range: an empty map, not an error.
	o.To, o.Bucket, o.N = hms(12, 0, 0, 0), time.Hour, 3
	got, err = influx.Aggregate(ctx, o)
	if err != nil || len(got) != 0 {
		t.Errorf("empty range: %v, %v; want no devices and no error", got, err)
	}
}

func TestIntegrationAggregateMaxDepth(t *testing.T) {
	m := testenv.Influxd(t)
	nan := math.NaN()
	// Six 10-minute buckets from 20:17:42: b0 [20:17:42, 20:27:42), b1 to
	// 20:37:42, b2 to 20:47:42, b3 to 20:57:42, b4 to 21:07:42, b5 to To.
	recs := []telemetry.Record{
		depthAt("WF-D01", 1, hms(20, 17, 41, 0), 999), // before the range
		depthAt("WF-D01", 2, hms(20, 17, 42, 0), 10),  // b0
		depthAt("WF-D01", 3, hms(20, 20, 0, 0), 12.5), // b0 max, mid-bucket
		depthAt("WF-D01", 4, hms(20, 27, 41, 0), 11),  // b0
		depthAt("WF-D01", 5, hms(20, 27, 42, 0), 3),   // b1
		depthAt("WF-D01", 6, hms(20, 30, 0, 0), 7),    // b1, on a clock ten minutes
		// b2 empty
		depthAt("WF-D01", 7, hms(20, 50, 0, 0), -4),             // b3
		depthAt("WF-D01", 8, hms(20, 55, 0, 0), -2.5),           // b3: the max of negatives
		depthAt("WF-D01", 9, hms(21, 0, 0, 0), 0),               // b4: zero, not NaN
		depthAt("WF-D01", 10, hms(21, 10, 0, 0), 25),            // b5
		depthAt("WF-D01", 11, hms(21, 17, 41, 999_999_999), 30), // b5 max, last instant
		depthAt("WF-D01", 12, hms(21, 17, 42, 0), 500),          // at To: out
		depthAt("WF-D'02", 1, hms(21, 15, 0, 0), 1.5),           // b5
		depthAt("WF-D'02", 2, hms(20, 37, 42, 0), 2.25),         // b2, first instant
		depthAt("WF-D03", 1, hms(20, 17, 41, 999_999_999), 40),  // just before the range
		rainAt("WF-R01", 1, hms(20, 40, 0, 0), 80),              // another measurement
		rainAt("WF-D01", 99, hms(20, 40, 0, 0), 60),             // a rain point of a depth device
	}
	writeRecords(t, m, recs)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := influx.Aggregate(ctx, influx.AggregateOptions{URL: m.URL(), Database: m.Database(),
		Measurement: "gauge_depth", Field: "depth_cm", Func: "max", To: aggTo, Bucket: 10 * time.Minute, N: 6})
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	checkAggregate(t, "max depth_cm", got, map[string][]float64{
		"WF-D01":  {12.5, 7, nan, -2.5, 0, 30},
		"WF-D'02": {nan, nan, 2.25, nan, nan, 1.5},
	})
}

func TestAggregateRejectsBadOptions(t *testing.T) {
	// A stand-in InfluxDB that counts queries: refused options never reach it.
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"results":[{"statement_id":0}]}`)
	}))
	defer srv.Close()
	good := influx.AggregateOptions{URL: srv.URL, Database: "urbanwatch", Measurement: "gauge_rain", Field: "mm",
		Func: "sum", To: aggTo, Bucket: time.Hour, N: 3}
	ctx := context.Background()

	// The good options do query, so the refusals below are not network errors.
	if got, err := influx.Aggregate(ctx, good); err != nil || len(got) != 0 || hits.Load() != 1 {
		t.Fatalf("good options: %v, %v after %d queries; want no devices, no error, 1 query", got, err, hits.Load())
	}
	hits.Store(0)
	for _, c := range []struct {
		label, want string
		edit        func(*influx.AggregateOptions)
	}{
		{"func mean", `"mean"`, func(o *influx.AggregateOptions) { o.Func = "mean" }},
		{"func SUM", `"SUM"`, func(o *influx.AggregateOptions) { o.Func = "SUM" }},
		{"func injection", "want sum or max", func(o *influx.AggregateOptions) { o.Func = `sum("mm")) FROM x; DROP DATABASE urbanwatch; SELECT max(` }},
		{"N 0", "× 0", func(o *influx.AggregateOptions) { o.N = 0 }},
		{"N negative", "× -1", func(o *influx.AggregateOptions) { o.N = -1 }},
		{"N too large", "× 10001", func(o *influx.AggregateOptions) { o.N = 10_001 }},
		{"bucket 0", "bucket", func(o *influx.AggregateOptions) { o.Bucket = 0 }},
		{"bucket under 1s", "bucket", func(o *influx.AggregateOptions) { o.Bucket = 999 * time.Millisecond }},
		{"bucket negative", "bucket", func(o *influx.AggregateOptions) { o.Bucket = -time.Hour }},
		{"empty URL", "URL", func(o *influx.AggregateOptions) { o.URL = "" }},
		{"empty database", "Database", func(o *influx.AggregateOptions) { o.Database = "" }},
	} {
		o := good
		c.edit(&o)
		got, err := influx.Aggregate(ctx, o)
		if err == nil {
			t.Errorf("%s: no error (result %v)", c.label, got)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to mention %q", c.label, err, c.want)
		}
		if got != nil {
			t.Errorf("%s: result %v with the error, want nil", c.label, got)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("refused options sent %d queries, want 0", n)
	}
}

func TestIntegrationReadDevicesAndKinds(t *testing.T) {
	m := testenv.Influxd(t)
	// odd has a lone quote, a backslash before a quote and one before a
	// digit; in line protocol none of them needs escaping.
	const odd = `WF-T'1\'2\3`
	const placeholder = "PLACEHOLDER"
	devices := []string{"T1", "T2", odd}
	base := hms(21, 0, 0, 0)
	var all []telemetry.Record
	var lines []string
	for i, dev := range devices {
		for j, k := range telemetry.Kinds {
			// Every device has a point of each kind at base (ties that
			// small pages read by OFFSET) and one of its own.
			for n, ts := range []time.Time{base, base.Add(time.Duration(10+i) * time.Second)} {
				r := telemetry.Record{Kind: k, Header: telemetry.Header{Device: dev,
					Seq: uint64(100*i + 10*j + n), TS: ts, Received: ts.Add(time.Duration(j) * time.Millisecond)}}
				switch k {
				case telemetry.KindGPS:
					r.Fix = telemetry.Fix{Lat: 36.7 + float64(i)/100, Lon: 119.1, SpeedKmh: 20, Heading: 90, Sats: 9, Valid: true}
				case telemetry.KindSensors:
					r.Sensors = telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown, LoadKg: 1000, HasLoad: true}
				case telemetry.KindRain:
					r.Rain = telemetry.RainReading{MM: 0.2 * float64(i+1), IntervalS: 60}
				case telemetry.KindDepth:
					r.Depth = telemetry.DepthReading{DepthCM: 10 + float64(i)}
				}
				all = append(all, r)
				// AppendLine replaces a backslash in a tag; write odd raw.
				w := r
				w.Device = placeholder
				lines = append(lines, strings.Replace(string(influx.AppendLine(nil, &w)), "device="+placeholder, "device="+r.Device, 1))
			}
		}
	}
	// Points outside [base−1m, base+1m) that a filter must not let in
	// (an OR escaping the time range would).
	for i, dev := range devices {
		for j, k := range telemetry.Kinds {
			for _, ts := range []time.Time{base.Add(-2 * time.Minute), base.Add(time.Minute)} {
				r := telemetry.Record{Kind: k, Header: telemetry.Header{Device: placeholder, Seq: uint64(1000 + 10*i + j), TS: ts, Received: ts}}
				lines = append(lines, strings.Replace(string(influx.AppendLine(nil, &r)), "device="+placeholder, "device="+dev, 1))
			}
		}
	}
	writeLines(t, m.URL(), m.Database(), lines)

	read := func(o influx.ReadOptions) []string {
		t.Helper()
		o.URL, o.Database = m.URL(), m.Database()
		o.From, o.To = base.Add(-time.Minute), base.Add(time.Minute)
		var got []string
		err := influx.ReadRecords(context.Background(), o, func(r *telemetry.Record) error {
			got = append(got, describe(r))
			return nil
		})
		if err != nil {
			t.Fatalf("ReadRecords(Devices %q, Kinds %v, PageRows %d): %v", o.Devices, o.Kinds, o.PageRows, err)
		}
		slices.Sort(got)
		return got
	}
	expect := func(devs []string, kinds []telemetry.Kind) []string {
		var out []string
		for i := range all {
			r := &all[i]
			if (len(devs) == 0 || slices.Contains(devs, r.Device)) && (len(kinds) == 0 || slices.Contains(kinds, r.Kind)) {
				out = append(out, describe(r))
			}
		}
		slices.Sort(out)
		return out
	}

	// Without filters everything comes back, odd's id intact.
	if got, want := read(influx.ReadOptions{}), expect(nil, nil); !slices.Equal(got, want) {
		t.Fatalf("unfiltered read (is %q stored as written?):\n got %q\nwant %q", odd, got, want)
	}

	gps := []telemetry.Kind{telemetry.KindGPS}
	for _, c := range []struct {
		devices []string
		kinds   []telemetry.Kind
		want    []string // nil: expect(devices, kinds)
	}{
		{devices: []string{"T1"}},
		{devices: []string{"T1"}, kinds: gps},
		{kinds: gps},
		{kinds: []telemetry.Kind{telemetry.KindDepth, telemetry.KindRain}},
		{devices: []string{odd}},
		{devices: []string{odd}, kinds: gps},
		{devices: []string{"T2", odd}, kinds: []telemetry.Kind{telemetry.KindSensors, telemetry.KindDepth}},
		{devices: []string{"T1", "T2", odd}},
		// Equality, not a prefix or pattern match.
		{devices: []string{"T"}, want: []string{}},
		{devices: []string{"nobody"}, kinds: gps, want: []string{}},
		// Quotes and backslashes stay inside the literal: these ids
		// match nothing and must not widen the filter.
		{devices: []string{`x' OR "device" = 'T2`}, want: []string{}},
		{devices: []string{`WF-T'1\`}, want: []string{}},
		{devices: []string{`WF-T'1'2\3`}, want: []string{}},
	} {
		want := c.want
		if want == nil {
			want = expect(c.devices, c.kinds)
		}
		if len(want) == 0 {
			want = nil
		}
		for _, page := range []int{0, 1, 2} {
			got := read(influx.ReadOptions{Devices: c.devices, Kinds: c.kinds, PageRows: page})
			if !slices.Equal(got, want) {
				t.Errorf("Devices %q, Kinds %v, PageRows %d:\n got %d %q\nwant %d %q",
					c.devices, c.kinds, page, len(got), got, len(want), want)
			}
		}
	}
}
