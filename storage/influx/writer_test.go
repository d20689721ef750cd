package influx_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/urbanwatch/urbanwatch/internal/testenv"
	"github.com/urbanwatch/urbanwatch/storage/influx"
	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

var base = time.Date(2024, 7, 20, 12, 0, 0, 0, time.UTC)

// sleeps records the writer's retry waits and returns at once.
type sleeps struct {
	mu     sync.Mutex
	delays []time.Duration
	hook   func(n int) // called with the number of waits so far
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	n, hook := len(s.delays), s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return ctx.Err()
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.delays...)
}

// startWriter runs a Writer on src against url and returns the registry and
// a stop function that cancels Run and checks it returned nil.
func startWriter(t *testing.T, src influx.Source, opts influx.Options) (*prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	if opts.Bucket == "" {
		opts.Bucket = "urbanwatch/autogen"
	}
	w, err := influx.NewWriter(src, opts)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v, want nil after cancel", err)
			}
			w.Close()
		})
	}
	t.Cleanup(stop)
	return reg, stop
}

func wantLines(recs []telemetry.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = string(influx.AppendLine(nil, &recs[i]))
	}
	return out
}

func TestWriterWritesGzipBatchesAndAcks(t *testing.T) {
	recs := makeRecords(7, 3, "T", base)
	raw := encode(recs)
	fake := newFakeInflux(t, nil)
	src := newFakeSource(batches(raw, 4)...)
	src.onAck = func(b spool.Batch) {
		// The batch's lines must have reached InfluxDB before its Ack.
		got := 0
		for _, r := range fake.requests() {
			got += len(r.lines)
		}
		if acked := src.ackedRecords(); got < acked {
			t.Errorf("acked %d records but InfluxDB has seen only %d lines", acked, got)
		}
	}
	reg, stop := startWriter(t, src, influx.Options{URL: fake.URL, Token: "user:pass", Org: "ignored", BatchLines: 4})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 2 }, "both batches acked")
	stop()

	reqs := fake.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d write requests, want 2", len(reqs))
	}
	var lines []string
	for _, r := range reqs {
		if r.path != "/api/v2/write" {
			t.Errorf("path %q, want /api/v2/write", r.path)
		}
		q, _ := url.ParseQuery(r.query)
		if q.Get("bucket") != "urbanwatch/autogen" || q.Get("org") != "ignored" || q.Get("precision") != "ns" {
			t.Errorf("query %q: want bucket=urbanwatch/autogen org=ignored precision=ns", r.query)
		}
		if r.encoding != "gzip" {
			t.Errorf("Content-Encoding %q, want gzip", r.encoding)
		}
		if r.auth != "Token user:pass" {
			t.Errorf("Authorization %q, want Token user:pass", r.auth)
		}
		lines = append(lines, r.lines...)
	}
	if want := wantLines(recs); strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines written:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if v := metricValue(t, reg, "urbanwatch_influx_written_points_total"); v != 7 {
		t.Errorf("written_points_total = %v, want 7", v)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_up"); v != 1 {
		t.Errorf("up = %v, want 1", v)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_batch_points"); v != 2 {
		t.Errorf("batch_points count = %v, want 2", v)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last_success_timestamp_seconds = %v, want about now", v)
	}
	for _, n := range src.nexts {
		if n != 4 {
			t.Errorf("Next called with maxRecords %d, want BatchLines 4", n)
		}
	}
}

func TestWriterSplitsOversizedBatches(t *testing.T) {
	recs := makeRecords(7, 3, "T", base)
	fake := newFakeInflux(t, nil)
	src := newFakeSource(spool.Batch{Records: encode(recs)})
	_, stop := startWriter(t, src, influx.Options{URL: fake.URL, BatchLines: 3})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked")
	stop()
	var sizes []int
	for _, r := range fake.requests() {
		sizes = append(sizes, len(r.lines))
	}
	if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 1 {
		t.Errorf("request sizes %v, want [3 3 1]", sizes)
	}
}

func TestWriterRetries5xxWithoutAck(t *testing.T) {
	recs := makeRecords(5, 2, "T", base)
	fake := newFakeInflux(t, func(n int, _ []string) (int, http.Header) {
		if n < 3 {
			return http.StatusInternalServerError, influxError("timeout")
		}
		return http.StatusNoContent, nil
	})
	src := newFakeSource(spool.Batch{Records: encode(recs)})
	src.onAck = func(spool.Batch) {
		if n := len(fake.requests()); n != 4 {
			t.Errorf("acked after %d requests, want after the 4th (first success)", n)
		}
	}
	sl := &sleeps{hook: func(int) {
		if src.ackedCount() != 0 {
			t.Error("batch acked while its write was still failing")
		}
	}}
	reg, stop := startWriter(t, src, influx.Options{URL: fake.URL, Sleep: sl.sleep,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked after retries")
	stop()

	reqs := fake.requests()
	for i, r := range reqs {
		if strings.Join(r.lines, "\n") != strings.Join(wantLines(recs), "\n") {
			t.Errorf("request %d did not resend the same batch", i)
		}
	}
	// Equal jitter: attempt k waits within [d/2, d], d = min(100ms·2^k, 300ms).
	d := sl.get()
	bounds := [][2]time.Duration{{50, 100}, {100, 200}, {150, 300}}
	if len(d) != 3 {
		t.Fatalf("%d retry waits, want 3", len(d))
	}
	for i, b := range bounds {
		if d[i] < b[0]*time.Millisecond || d[i] > b[1]*time.Millisecond {
			t.Errorf("wait %d = %v, want within [%vms, %vms]", i, d[i], b[0], b[1])
		}
	}
	if v := metricValue(t, reg, "urbanwatch_influx_write_failures_total", "reason", "server_error"); v != 3 {
		t.Errorf("write_failures_total{server_error} = %v, want 3", v)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_written_points_total"); v != 5 {
		t.Errorf("written_points_total = %v, want 5", v)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_write_seconds"); v != 4 {
		t.Errorf("write_seconds count = %v, want 4 (every attempt)", v)
	}
}

func TestWriterHonoursRetryAfter(t *testing.T) {
	fake := newFakeInflux(t, func(n int, _ []string) (int, http.Header) {
		if n == 0 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}
		}
		return http.StatusNoContent, nil
	})
	src := newFakeSource(spool.Batch{Records: encode(makeRecords(3, 1, "T", base))})
	sl := &sleeps{}
	reg, stop := startWriter(t, src, influx.Options{URL: fake.URL, Sleep: sl.sleep})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked")
	stop()
	if d := sl.get(); len(d) != 1 || d[0] != 7*time.Second {
		t.Errorf("waits %v, want [7s] from Retry-After", d)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_write_failures_total", "reason", "rate_limited"); v != 1 {
		t.Errorf("write_failures_total{rate_limited} = %v, want 1", v)
	}
}

func TestWriterRetriesConfigurationErrors(t *testing.T) {
	// 404 (database not found) and 401 are not the data's fault: retried, not
	// dead-lettered.
	fake := newFakeInflux(t, func(n int, _ []string) (int, http.Header) {
		switch n {
		case 0:
			return http.StatusNotFound, influxError(`database not found: "urbanwatch"`)
		case 1:
			return http.StatusUnauthorized, nil
		}
		return http.StatusNoContent, nil
	})
	dl := &deadLetters{}
	src := newFakeSource(spool.Batch{Records: encode(makeRecords(3, 1, "T", base))})
	reg, stop := startWriter(t, src, influx.Options{URL: fake.URL, Sleep: (&sleeps{}).sleep, Rejected: dl.add})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked")
	stop()
	if r, _ := dl.snapshot(); len(r) != 0 {
		t.Errorf("dead letters %v, want none", r)
	}
	for reason, want := range map[string]float64{"not_found": 1, "auth": 1, "rejected": 0} {
		if v := metricValue(t, reg, "urbanwatch_influx_write_failures_total", "reason", reason); v != want {
			t.Errorf("write_failures_total{%s} = %v, want %v", reason, v, want)
		}
	}
	if v := metricValue(t, reg, "urbanwatch_influx_written_points_total"); v != 3 {
		t.Errorf("written_points_total = %v, want 3", v)
	}
}

func TestWriter400BisectsToBadRecords(t *testing.T) {
	recs := makeRecords(16, 4, "T", base)
	recs[5].Device, recs[11].Device = "BAD1", "BAD2"
	raw := encode(recs)
	fake := newFakeInflux(t, func(_ int, lines []string) (int, http.Header) {
		for _, l := range lines {
			if strings.Contains(l, "device=BAD") {
				return http.StatusBadRequest, influxError(`partial write: field type conflict: input field "mm" on measurement "gauge_rain" is type integer, already exists as type float dropped=1`)
			}
		}
		return http.StatusNoContent, nil
	})
	dl := &deadLetters{}
	src := newFakeSource(spool.Batch{Records: raw}, spool.Batch{Records: encode(makeRecords(2, 1, "N", base))})
	reg, stop := startWriter(t, src, influx.Options{URL: fake.URL, Rejected: dl.add})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 2 }, "both batches acked")
	stop()

	reasons, got := dl.snapshot()
	if len(got) != 2 || string(got[0]) != string(raw[5]) || string(got[1]) != string(raw[11]) {
		t.Fatalf("dead letters %d, want exactly records 5 and 11", len(got))
	}
	for _, r := range reasons {
		if !strings.HasPrefix(r, "refused: HTTP 400: partial write: field type conflict") {
			t.Errorf("reason %q does not carry InfluxDB's message", r)
		}
	}
	// Every good record was written by a successful request.
	stored := map[string]bool{}
	for i, r := range fake.requests() {
		if i > 0 && !strings.Contains(strings.Join(r.lines, "\n"), "device=BAD") {
			for _, l := range r.lines {
				stored[l] = true
			}
		}
	}
	for i, l := range wantLines(recs) {
		if i != 5 && i != 11 && !stored[l] {
			t.Errorf("good record %d never written successfully", i)
		}
	}
	if v := metricValue(t, reg, "urbanwatch_influx_rejected_records_total"); v != 2 {
		t.Errorf("rejected_records_total = %v, want 2", v)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_written_points_total"); v != 16 {
		t.Errorf("written_points_total = %v, want 16 (14 + next batch's 2)", v)
	}
	if n := len(fake.requests()); n > 16 {
		t.Errorf("%d requests to isolate 2 bad records in 16, want a bisection (<= 16)", n)
	}
}

func TestWriterBisectionBudget(t *testing.T) {
	recs := makeRecords(64, 4, "BAD", base)
	fake := newFakeInflux(t, func(int, []string) (int, http.Header) {
		return http.StatusBadRequest, influxError("unable to parse")
	})
	dl := &deadLetters{}
	src := newFakeSource(spool.Batch{Records: encode(recs)})
	_, stop := startWriter(t, src, influx.Options{URL: fake.URL, Rejected: dl.add, MaxBisectWrites: 6})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked")
	stop()
	if _, got := dl.snapshot(); len(got) != 64 {
		t.Errorf("%d dead letters, want all 64", len(got))
	}
	if n := len(fake.requests()); n > 1+6 {
		t.Errorf("%d requests, want at most 1 + MaxBisectWrites (6)", n)
	}
}

func TestWriterSkipsUndecodableRecords(t *testing.T) {
	recs := makeRecords(3, 1, "T", base)
	raw := encode(recs)
	garbage := []byte{1, 99, 0, 0}
	fake := newFakeInflux(t, nil)
	dl := &deadLetters{}
	src := newFakeSource(spool.Batch{Records: [][]byte{raw[0], garbage, raw[1], {}, raw[2]}})
	reg, stop := startWriter(t, src, influx.Options{URL: fake.URL, Rejected: dl.add})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked")
	stop()
	reasons, got := dl.snapshot()
	if len(got) != 2 || string(got[0]) != string(garbage) || len(got[1]) != 0 {
		t.Errorf("dead letters %q, want the two undecodable records", got)
	}
	for _, r := range reasons {
		if !strings.HasPrefix(r, influx.RejectUndecodable+": ") {
			t.Errorf("reason %q, want undecodable…", r)
		}
	}
	if v := metricValue(t, reg, "urbanwatch_influx_undecodable_records_total"); v != 2 {
		t.Errorf("undecodable_records_total = %v, want 2", v)
	}
	reqs := fake.requests()
	if len(reqs) != 1 || strings.Join(reqs[0].lines, "\n") != strings.Join(wantLines(recs), "\n") {
		t.Errorf("requests %+v, want one with the 3 good records", reqs)
	}
}

func TestWriterAllUndecodableStillAcks(t *testing.T) {
	fake := newFakeInflux(t, nil)
	src := newFakeSource(spool.Batch{Records: [][]byte{{0xff}}})
	_, stop := startWriter(t, src, influx.Options{URL: fake.URL})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked")
	stop()
	if n := len(fake.requests()); n != 0 {
		t.Errorf("%d requests for a batch with nothing to write, want 0", n)
	}
}

func TestWriterTimeoutIsRetried(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeInflux(t, func(n int, _ []string) (int, http.Header) {
		if n == 0 {
			<-release // hang until the test ends: the writer must give up first
		}
		return http.StatusNoContent, nil
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	src := newFakeSource(spool.Batch{Records: encode(makeRecords(2, 1, "T", base))})
	reg, stop := startWriter(t, src, influx.Options{URL: srv.URL, Timeout: time.Second, Sleep: (&sleeps{}).sleep})
	testenv.WaitFor(t, 5*time.Second, func() bool { return src.ackedCount() == 1 }, "batch acked after a timeout")
	stop()
	if v := metricValue(t, reg, "urbanwatch_influx_write_failures_total", "reason", "timeout"); v != 1 {
		t.Errorf("write_failures_total{timeout} = %v, want 1", v)
	}
}

func TestWriterNetworkErrorRetriesUntilCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused

	src := newFakeSource(spool.Batch{Records: encode(makeRecords(2, 1, "T", base))})
	stopped := make(chan struct{})
	var stopOnce sync.Once
	sl := &sleeps{hook: func(n int) {
		if n == 5 {
			stopOnce.Do(func() { close(stopped) })
		}
	}}
	reg, stop := startWriter(t, src, influx.Options{URL: "http://" + addr, Sleep: sl.sleep})
	<-stopped // five failed attempts
	if v := metricValue(t, reg, "urbanwatch_influx_write_failures_total", "reason", "network"); v < 5 {
		t.Errorf("write_failures_total{network} = %v, want >= 5", v)
	}
	if v := metricValue(t, reg, "urbanwatch_influx_up"); v != 0 {
		t.Errorf("up = %v, want 0", v)
	}
	stop() // Run must return nil on cancel, without acking
	if n := src.ackedCount(); n != 0 {
		t.Errorf("%d acks while InfluxDB was unreachable, want 0", n)
	}
}

func TestWriterRunReturnsNilWhenIdleAndCancelled(t *testing.T) {
	fake := newFakeInflux(t, nil)
	src := newFakeSource()
	_, stop := startWriter(t, src, influx.Options{URL: fake.URL})
	stop()
}

func TestNewWriterValidates(t *testing.T) {
	src := newFakeSource()
	for _, o := range []influx.Options{
		{URL: "", Bucket: "db/rp"},
		{URL: "not a url", Bucket: "db/rp"},
		{URL: "http://127.0.0.1:8086"},
	} {
		if _, err := influx.NewWriter(src, o); err == nil {
			t.Errorf("NewWriter(%+v) succeeded, want an error", o)
		}
	}
	if _, err := influx.NewWriter(nil, influx.Options{URL: "http://x", Bucket: "db"}); err == nil {
		t.Error("NewWriter(nil source) succeeded")
	}
	reg := prometheus.NewRegistry()
	o := influx.Options{URL: "http://127.0.0.1:8086", Bucket: "db", Registerer: reg}
	if _, err := influx.NewWriter(src, o); err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	if _, err := influx.NewWriter(src, o); err == nil {
		t.Error("second NewWriter on the same registry succeeded, want a registration error")
	}
	if _, err := influx.NewWriter(src, influx.Options{URL: "http://127.0.0.1:8086", Bucket: "db"}); err != nil {
		t.Errorf("NewWriter without registry: %v", err)
	}
}

// The spool's cursor is what Run drains in production.
var _ influx.Source = (*spool.Cursor)(nil)
