package influx_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/urbanwatch/urbanwatch/storage/spool"
	"github.com/urbanwatch/urbanwatch/telemetry"
)

// fakeSource is a Source fed by the test: Next hands out pushed batches in
// order and blocks when there are none; Ack records acknowledgements.
type fakeSource struct {
	mu      sync.Mutex
	pending []spool.Batch
	acked   []spool.Batch
	nexts   []int // maxRecords of each Next call
	onAck   func(spool.Batch)
	wake    chan struct{}
}

func newFakeSource(batches ...spool.Batch) *fakeSource {
	s := &fakeSource{wake: make(chan struct{}, 1)}
	s.push(batches...)
	return s
}

func (s *fakeSource) push(batches ...spool.Batch) {
	s.mu.Lock()
	s.pending = append(s.pending, batches...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *fakeSource) Next(ctx context.Context, maxRecords, maxBytes int) (spool.Batch, error) {
	for {
		s.mu.Lock()
		s.nexts = append(s.nexts, maxRecords)
		if len(s.pending) > 0 {
			b := s.pending[0]
			s.pending = s.pending[1:]
			s.mu.Unlock()
			return b, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return spool.Batch{}, ctx.Err()
		case <-s.wake:
		}
	}
}

func (s *fakeSource) Ack(b spool.Batch) error {
	s.mu.Lock()
	s.acked = append(s.acked, b)
	f := s.onAck
	s.mu.Unlock()
	if f != nil {
		f(b)
	}
	return nil
}

func (s *fakeSource) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func (s *fakeSource) ackedRecords() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.acked {
		n += len(b.Records)
	}
	return n
}

// writeRequest is one request the fake InfluxDB received.
type writeRequest struct {
	path, query, auth, encoding string
	lines                       []string
}

// fakeInflux is an httptest server speaking /api/v2/write; respond decides
// each answer (status, extra headers) from the request number (0-based) and
// the decoded lines. A nil respond answers 204.
type fakeInflux struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []writeRequest
	respond func(n int, lines []string) (int, http.Header)
}

func newFakeInflux(t *testing.T, respond func(n int, lines []string) (int, http.Header)) *fakeInflux {
	f := &fakeInflux{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := writeRequest{path: r.URL.Path, query: r.URL.RawQuery,
			auth: r.Header.Get("Authorization"), encoding: r.Header.Get("Content-Encoding")}
		var body io.Reader = r.Body
		if req.encoding == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("fake influx: gzip: %v", err)
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			t.Errorf("fake influx: read body: %v", err)
			return
		}
		if len(raw) > 0 {
			req.lines = strings.Split(string(raw), "\n")
		}
		f.mu.Lock()
		n := len(f.reqs)
		f.reqs = append(f.reqs, req)
		f.mu.Unlock()
		status, h := http.StatusNoContent, http.Header(nil)
		if f.respond != nil {
			status, h = f.respond(n, req.lines)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		if msg := h.Get("X-Influxdb-Error"); msg != "" {
			// InfluxDB 1.8 repeats the message as a JSON body.
			b, _ := json.Marshal(map[string]string{"error": msg})
			_, _ = w.Write(b)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeInflux) requests() []writeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]writeRequest(nil), f.reqs...)
}

// influxError is the header InfluxDB 1.8 puts its error message in.
func influxError(msg string) http.Header {
	return http.Header{"X-Influxdb-Error": {msg}, "Content-Type": {"application/json"}}
}

// makeRecords returns n records cycling through the four kinds, device
// prefix+i%devices, distinct timestamps from base.
func makeRecords(n, devices int, prefix string, base time.Time) []telemetry.Record {
	out := make([]telemetry.Record, n)
	for i := range out {
		r := &out[i]
		r.Kind = telemetry.Kinds[i%len(telemetry.Kinds)]
		r.Device = fmt.Sprintf("%s%04d", prefix, i%devices)
		r.Seq = uint64(i)
		r.TS = base.Add(time.Duration(i) * time.Millisecond)
		r.Received = r.TS.Add(time.Duration(i%3000) * time.Millisecond)
		r.Late = i%17 == 0
		switch r.Kind {
		case telemetry.KindGPS:
			r.Fix = telemetry.Fix{Lat: 36.7 + float64(i%100)/1000, Lon: 119.1, SpeedKmh: float64(i % 80), Heading: float64(i % 360), Sats: 8, Valid: true}
		case telemetry.KindSensors:
			r.Sensors = telemetry.SensorState{Cover: telemetry.CoverClosed, Body: telemetry.BodyDown, LoadKg: 1000, HasLoad: i%2 == 0}
		case telemetry.KindRain:
			r.Rain = telemetry.RainReading{MM: 0.2, IntervalS: 60}
		case telemetry.KindDepth:
			r.Depth = telemetry.DepthReading{DepthCM: float64(i % 50)}
		}
	}
	return out
}

// encode returns the records' spool encodings.
func encode(recs []telemetry.Record) [][]byte {
	out := make([][]byte, len(recs))
	for i := range recs {
		out[i] = recs[i].AppendBinary(nil)
	}
	return out
}

// batches splits encoded records into spool batches of size n.
func batches(raw [][]byte, n int) []spool.Batch {
	var out []spool.Batch
	for len(raw) > 0 {
		k := min(n, len(raw))
		out = append(out, spool.Batch{Records: raw[:k]})
		raw = raw[k:]
	}
	return out
}

// metricValue returns the value of a counter or gauge (or a histogram's
// sample count) named name with the given label pairs, 0 if absent.
func metricValue(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// deadLetters collects Rejected calls.
type deadLetters struct {
	mu      sync.Mutex
	reasons []string
	records [][]byte
}

func (d *deadLetters) add(reason string, rec []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reasons = append(d.reasons, reason)
	d.records = append(d.records, append([]byte(nil), rec...))
}

func (d *deadLetters) snapshot() ([]string, [][]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.reasons...), append([][]byte(nil), d.records...)
}
