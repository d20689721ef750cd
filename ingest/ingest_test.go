package ingest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

// memStore is a Store that keeps records in memory and can be told to fail
// or to hold commits until released.
type memStore struct {
	mu      sync.Mutex
	records [][]byte
	fail    error
	hold    chan struct{} // non-nil: Wait blocks until closed
}

type memWaiter struct {
	err  error
	hold chan struct{}
}

func (w memWaiter) Done() <-chan struct{} {
	if w.hold != nil {
		return w.hold
	}
	return closedChan
}

func (w memWaiter) Wait() error {
	if w.hold != nil {
		<-w.hold
	}
	return w.err
}

func (m *memStore) Submit(p []byte) Waiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return memWaiter{err: m.fail}
	}
	m.records = append(m.records, append([]byte(nil), p...))
	return memWaiter{hold: m.hold}
}

func (m *memStore) decoded(t *testing.T) []telemetry.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []telemetry.Record
	for _, p := range m.records {
		var r telemetry.Record
		if err := r.UnmarshalBinary(p); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

type devices map[string]telemetry.Class

func (d devices) Class(id string) (telemetry.Class, bool) { c, ok := d[id]; return c, ok }

var testNow = time.Date(2026, 11, 24, 14, 10, 0, 0, time.UTC) // 22:10 in Weifang

type fixture struct {
	in    *Ingester
	store *memStore
	dead  *DeadLetters
	reg   *prometheus.Registry
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: &memStore{}, reg: prometheus.NewRegistry(), now: testNow}
	var err error
	f.dead, err = OpenDeadLetters(DeadLetterOptions{Dir: t.TempDir(), Registerer: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.dead.Close() })
	f.in, err = New(Options{
		Devices:     devices{"T1": telemetry.ClassTruck, "T2": telemetry.ClassTruck, "G1": telemetry.ClassGauge},
		Store:       f.store,
		DeadLetters: f.dead,
		Now:         func() time.Time { return f.now },
		Registerer:  f.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func gps(seq int, ts time.Time) []byte {
	return fmt.Appendf(nil, `{"ts":%q,"seq":%d,"lat":36.71,"lon":119.16,"speed_kmh":30,"heading":90,"sats":9,"valid":true}`,
		ts.In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339Nano), seq)
}

func TestIngesterAcceptsAndStores(t *testing.T) {
	f := newFixture(t)
	out := f.in.Handle("T1", "trucks/T1/gps", gps(1, testNow.Add(-2*time.Second)))
	if out.Status != Accepted || out.Late {
		t.Fatalf("got %+v", out)
	}
	recs := f.store.decoded(t)
	if len(recs) != 1 || recs[0].Device != "T1" || recs[0].Seq != 1 || !recs[0].Received.Equal(testNow) {
		t.Fatalf("stored %+v", recs)
	}
	if got := testutil.ToFloat64(f.in.accepted.WithLabelValues("gps")); got != 1 {
		t.Errorf("accepted_total = %v", got)
	}
}

func TestIngesterRejections(t *testing.T) {
	for _, c := range []struct {
		name, identity, topic string
		payload               []byte
		want                  Reason
	}{
		{"identity mismatch", "T2", "trucks/T1/gps", gps(1, testNow), ReasonIdentityMismatch},
		{"unknown device", "", "trucks/T9/gps", gps(1, testNow), ReasonUnknownDevice},
		{"wrong class", "", "gauges/T1/rain", []byte(`{"ts":1,"seq":1,"mm":0,"interval_s":60}`), ReasonUnknownDevice},
		{"unknown topic", "T1", "trucks/T1/can", gps(1, testNow), ReasonUnknownTopic},
		{"oversized", "T1", "trucks/T1/gps", []byte(`{"ts":1,"pad":"` + strings.Repeat("x", 5000) + `"}`), ReasonOversized},
		{"future", "T1", "trucks/T1/gps", gps(1, testNow.Add(5*time.Minute+time.Second)), ReasonTSFuture},
		{"too old", "T1", "trucks/T1/gps", gps(1, testNow.Add(-7*24*time.Hour-time.Second)), ReasonTSTooOld},
		{"malformed", "T1", "trucks/T1/gps", []byte("{\x00\xff"), ReasonMalformedJSON},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			out := f.in.Handle(c.identity, c.topic, c.payload)
			if out.Status != Rejected || out.Reason != c.want {
				t.Fatalf("got %+v, want rejected %s", out, c.want)
			}
			if n := len(f.store.decoded(t)); n != 0 {
				t.Fatalf("%d records stored", n)
			}
			if got := testutil.ToFloat64(f.in.rejected.WithLabelValues(string(c.want))); got != 1 {
				t.Errorf("rejected_total{%s} = %v", c.want, got)
			}
			f.dead.Close()
			letters := readDeadLetters(t, f.dead.Path())
			if len(letters) != 1 || letters[0].Reason != c.want || letters[0].Topic != c.topic || letters[0].Size != len(c.payload) {
				t.Fatalf("dead letters %+v", letters)
			}
			if letters[0].Payload == "" && letters[0].PayloadB64 == "" {
				t.Error("dead letter lost the payload")
			}
		})
	}
}

func TestIngesterBoundaryTimesAccepted(t *testing.T) {
	f := newFixture(t)
	for i, ts := range []time.Time{testNow.Add(5 * time.Minute), testNow.Add(-7 * 24 * time.Hour)} {
		if out := f.in.Handle("T1", "trucks/T1/gps", gps(i, ts)); out.Status != Accepted {
			t.Errorf("ts %s: %+v", ts, out)
		}
	}
}

func TestIngesterDuplicatesAndLate(t *testing.T) {
	f := newFixture(t)
	h := func(seq int, ts time.Time) Outcome { return f.in.Handle("T1", "trucks/T1/gps", gps(seq, ts)) }
	t0 := testNow.Add(-time.Minute + time.Second)
	if out := h(10, t0); out.Status != Accepted || out.Late {
		t.Fatalf("first: %+v", out)
	}
	if out := h(10, t0); out.Status != Duplicate {
		t.Fatalf("redelivery: %+v", out)
	}
	if out := h(12, t0.Add(2*time.Second)); out.Status != Accepted || out.Late {
		t.Fatalf("next: %+v", out)
	}
	// A back-filled message after a tunnel: older seq and ts, not seen.
	if out := h(11, t0.Add(time.Second)); out.Status != Accepted || !out.Late {
		t.Fatalf("back-fill: %+v, want accepted late", out)
	}
	// Long after its ts (past LateAfter) is late even in order.
	if out := h(13, testNow.Add(-2*time.Minute)); out.Status != Accepted || !out.Late {
		t.Fatalf("delayed: %+v, want accepted late", out)
	}
	// The same seq on another kind is not a duplicate.
	if out := f.in.Handle("T1", "trucks/T1/sensors", fmt.Appendf(nil, `{"ts":%d,"seq":10,"cover":"closed","body":"down"}`, testNow.UnixMilli())); out.Status != Accepted {
		t.Fatalf("sensors seq 10: %+v", out)
	}
	if got := testutil.ToFloat64(f.in.duplicates.WithLabelValues("gps")); got != 1 {
		t.Errorf("duplicates_total = %v", got)
	}
	if got := testutil.ToFloat64(f.in.late.WithLabelValues("gps")); got != 2 {
		t.Errorf("late_total = %v", got)
	}
	if n := len(f.store.decoded(t)); n != 5 {
		t.Errorf("%d records stored, want 5", n)
	}
}

func TestIngesterStoreFailureIsNotADuplicate(t *testing.T) {
	f := newFixture(t)
	f.store.fail = errors.New("spool full")
	msg := gps(1, testNow)
	if out := f.in.Handle("T1", "trucks/T1/gps", msg); out.Status != Unavailable {
		t.Fatalf("got %+v, want unavailable", out)
	}
	f.store.fail = nil
	// The device resends: it must be stored now, not dropped as a duplicate.
	if out := f.in.Handle("T1", "trucks/T1/gps", msg); out.Status != Accepted {
		t.Fatalf("resend: %+v", out)
	}
	if got := testutil.ToFloat64(f.in.unavailable); got != 1 {
		t.Errorf("unavailable_total = %v", got)
	}
}

func TestIngesterWaitsForDurability(t *testing.T) {
	f := newFixture(t)
	f.store.hold = make(chan struct{})
	p := f.in.Begin("T1", "trucks/T1/gps", gps(1, testNow))
	got := make(chan Outcome)
	go func() { got <- p.Wait() }()
	select {
	case out := <-got:
		t.Fatalf("Wait returned %+v before the store committed", out)
	default:
	}
	close(f.store.hold)
	if out := <-got; out.Status != Accepted {
		t.Fatalf("got %+v", out)
	}
}

func TestSeedRecognisesRedeliveryAfterRestart(t *testing.T) {
	f := newFixture(t)
	msg := gps(5, testNow)
	f.in.Handle("T1", "trucks/T1/gps", msg)
	stored := f.store.records[0]

	g := newFixture(t) // a restarted process
	if err := g.in.Seed(stored); err != nil {
		t.Fatal(err)
	}
	if out := g.in.Handle("T1", "trucks/T1/gps", msg); out.Status != Duplicate {
		t.Fatalf("redelivery after restart: %+v", out)
	}
	if err := g.in.Seed([]byte{9, 9}); err == nil {
		t.Error("Seed accepted garbage")
	}
}

func readDeadLetters(t *testing.T, path string) []DeadLetter {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []DeadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("dead letter line %q: %v", sc.Text(), err)
		}
		out = append(out, d)
	}
	return out
}

func TestDeadLettersRotateAndStayBounded(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDeadLetters(DeadLetterOptions{Dir: dir, MaxBytes: 4096, MaxFiles: 2, MaxPayload: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		d.Put(testNow, ReasonMalformedJSON, "bad", "trucks/T1/gps", "T1", []byte(strings.Repeat("x", 300)))
	}
	d.Put(testNow, ReasonMalformedJSON, "binary", "trucks/T1/gps", "T1", []byte{0xff, 0xfe})
	d.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "deadletters.jsonl*"))
	if len(files) != 3 {
		t.Fatalf("files %v, want current + 2 rotated", files)
	}
	var total int64
	for _, f := range files {
		st, _ := os.Stat(f)
		total += st.Size()
		if st.Size() > 4096 {
			t.Errorf("%s is %d bytes, over the limit", f, st.Size())
		}
	}
	last := readDeadLetters(t, d.Path())
	l := last[len(last)-1]
	if l.PayloadB64 != "//4=" || l.Size != 2 {
		t.Errorf("binary payload kept as %+v", l)
	}
	if !last[0].Truncated || len(last[0].Payload) != 100 {
		t.Errorf("payload not cut at MaxPayload: %+v", last[0])
	}
}
