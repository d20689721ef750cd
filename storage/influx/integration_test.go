package influx_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// countAll returns the points per kind in m's database, counting the seq
// field every measurement has.
func countAll(t testing.TB, m *influx.Managed) map[telemetry.Kind]int64 {
	t.Helper()
	out := map[telemetry.Kind]int64{}
	for _, k := range telemetry.Kinds {
		n, err := influx.CountPoints(context.Background(), m.URL(), m.Database(), k.Measurement(), "seq")
		if err != nil {
			t.Fatalf("CountPoints: %v", err)
		}
		out[k] = n
	}
	return out
}

func total(c map[telemetry.Kind]int64) int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

func perKind(recs []telemetry.Record) map[telemetry.Kind]int64 {
	out := map[telemetry.Kind]int64{}
	for _, k := range telemetry.Kinds {
		out[k] = 0
	}
	for i := range recs {
		out[recs[i].Kind]++
	}
	return out
}

func sameCounts(a, b map[telemetry.Kind]int64) bool {
	for _, k := range telemetry.Kinds {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

func TestIntegrationWriteOutageAndReplay(t *testing.T) {
	m := testenv.Influxd(t)
	now := time.Now().Truncate(time.Second)
	first := makeRecords(2000, 50, "T", now.Add(-time.Hour))
	second := makeRecords(1000, 50, "U", now.Add(-30*time.Minute))

	src := newFakeSource(batches(encode(first), 500)...)
	dl := &deadLetters{}
	reg, stop := startWriter(t, src, influx.Options{
		URL: m.URL(), Bucket: m.Database() + "/autogen", BatchLines: 500,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Timeout: 5 * time.Second,
		Rejected: dl.add,
	})
	testenv.WaitFor(t, 30*time.Second, func() bool { return src.ackedCount() == 4 }, "first 2000 records acked")
	if got, want := countAll(t, m), perKind(first); !sameCounts(got, want) {
		t.Fatalf("points per kind %v, want %v", got, want)
	}

	// Outage: InfluxDB crashes; the writer retries and acks nothing.
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	failures := func() float64 {
		return metricValue(t, reg, "urbanwatch_influx_write_failures_total", "reason", "network")
	}
	f0 := failures()
	src.push(batches(encode(second), 500)...)
	testenv.WaitFor(t, 30*time.Second, func() bool { return failures() >= f0+3 }, "writes failing during the outage")
	if n := src.ackedCount(); n != 4 {
		t.Fatalf("%d batches acked during the outage, want still 4", n)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_up"); v != 0 {
		t.Errorf("up = %v during the outage, want 0", v)
	}

	// Recovery: everything arrives.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, func() bool { return src.ackedCount() == 6 }, "outage batches acked after restart")
	all := append(append([]telemetry.Record(nil), first...), second...)
	if got, want := countAll(t, m), perKind(all); !sameCounts(got, want) {
		t.Fatalf("after the outage: points per kind %v, want %v", got, want)
	}

	// Replay (a crash between write and Ack re-delivers): no duplicates.
	src.push(batches(encode(all), 700)...)
	testenv.WaitFor(t, 30*time.Second, func() bool { return src.ackedCount() == 6+5 }, "replayed batches acked")
	if got := countAll(t, m); total(got) != int64(len(all)) {
		t.Fatalf("after replay: %d points (%v), want still %d", total(got), got, len(all))
	}
	stop()
	if r, _ := dl.snapshot(); len(r) != 0 {
		t.Errorf("dead letters %v, want none", r)
	}
}

func TestIntegrationGoldenLinesAccepted(t *testing.T) {
	m := testenv.Influxd(t)
	var recs []telemetry.Record
	for _, g := range goldenLines {
		recs = append(recs, g.rec)
	}
	src := newFakeSource(spool.Batch{Records: encode(recs)})
	dl := &deadLetters{}
	_, stop := startWriter(t, src, influx.Options{URL: m.URL(), Bucket: m.Database(), Rejected: dl.add})
	testenv.WaitFor(t, 30*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked")
	stop()
	if r, _ := dl.snapshot(); len(r) != 0 {
		t.Fatalf("InfluxDB refused golden lines: %v", r)
	}
	// Same (measurement, device, ts) overwrite each other: count distinct keys.
	type key struct {
		k telemetry.Kind
		d string
	}
	distinct := map[key]bool{}
	want := map[telemetry.Kind]int64{}
	for _, r := range recs {
		if !distinct[key{r.Kind, r.Device}] {
			distinct[key{r.Kind, r.Device}] = true
			want[r.Kind]++
		}
	}
	if got := countAll(t, m); !sameCounts(got, want) {
		t.Errorf("points per kind %v, want %v", got, want)
	}
}

func TestIntegrationFieldTypeConflictDeadLetters(t *testing.T) {
	m := testenv.Influxd(t)
	ts := time.Now().Add(-time.Minute)
	// Someone stored gauge_rain.mm as an integer: float mm now conflicts.
	body := "gauge_rain,device=OLD mm=5i " + strconv.FormatInt(ts.UnixNano(), 10)
	resp, err := http.Post(m.URL()+"/write?db="+m.Database(), "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("seed write: HTTP %d", resp.StatusCode)
	}

	recs := makeRecords(40, 5, "G", ts) // 10 of each kind
	raw := encode(recs)
	src := newFakeSource(spool.Batch{Records: raw})
	dl := &deadLetters{}
	reg, stop := startWriter(t, src, influx.Options{URL: m.URL(), Bucket: m.Database(), Rejected: dl.add})
	testenv.WaitFor(t, 30*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked despite the conflict")
	stop()

	reasons, got := dl.snapshot()
	if len(got) != 10 {
		t.Fatalf("%d dead letters, want the 10 rain records", len(got))
	}
	for i, rec := range got {
		var r telemetry.Record
		if err := r.UnmarshalBinary(rec); err != nil || r.Kind != telemetry.KindRain {
			t.Errorf("dead letter %d is %v (%v), want a rain record", i, r.String(), err)
		}
		if !strings.Contains(reasons[i], "field type conflict") {
			t.Errorf("reason %q, want InfluxDB's field type conflict", reasons[i])
		}
	}
	want := perKind(recs)
	want[telemetry.KindRain] = 0 // only the seeded point, which has no seq
	if c := countAll(t, m); !sameCounts(c, want) {
		t.Errorf("points per kind %v, want %v", c, want)
	}
	if n, err := influx.CountPoints(context.Background(), m.URL(), m.Database(), "gauge_rain", "mm"); err != nil || n != 1 {
		t.Errorf("gauge_rain mm count = %d, %v; want 1 (the seeded point)", n, err)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_rejected_records_total"); v != 10 {
		t.Errorf("rejected_records_total = %v, want 10", v)
	}
}

func TestIntegrationEnsureDatabaseIdempotent(t *testing.T) {
	m := testenv.Influxd(t)
	ctx := context.Background()
	for range 2 {
		if err := influx.EnsureDatabase(ctx, m.URL(), "", "", `odd "name"`); err != nil {
			t.Fatalf("EnsureDatabase: %v", err)
		}
	}
	if n, err := influx.CountPoints(ctx, m.URL(), `odd "name"`, "nothing", "x"); err != nil || n != 0 {
		t.Errorf("CountPoints on an empty database = %d, %v; want 0, nil", n, err)
	}
	if _, err := influx.CountPoints(ctx, m.URL(), "missing_db", "m", "f"); err == nil {
		t.Error("CountPoints on a missing database succeeded, want an error")
	}
}

// BenchmarkWriterDrain measures points/s drained from memory into a real
// influxd in 5,000-line gzip batches (2,000 devices, all four kinds).
func BenchmarkWriterDrain(b *testing.B) {
	m := testenv.Influxd(b)
	const batch = 5000
	n := max(b.N, batch)
	recs := makeRecords(n, 2000, "B", time.Now().Add(-time.Hour))
	raw := encode(recs)
	src := newFakeSource()
	w, err := influx.NewWriter(src, influx.Options{URL: m.URL(), Bucket: m.Database(), BatchLines: batch})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		w.Close()
	}()

	all := make(chan struct{})
	want := len(batches(raw, batch))
	src.onAck = func(spool.Batch) {
		if src.ackedCount() == want {
			close(all)
		}
	}
	b.ResetTimer()
	start := time.Now()
	src.push(batches(raw, batch)...)
	<-all
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "points/s")
}
