package ingest

import (
	"testing"
	"time"

	"github.com/urbanwatch/urbanwatch/telemetry"
)

func TestDedupWindow(t *testing.T) {
	d := NewDedup()
	t0 := time.Unix(1_800_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	check := func(seq uint64, ts time.Time, want Verdict) {
		t.Helper()
		if got := d.Check("T1", telemetry.KindGPS, seq, ts); got != want {
			t.Fatalf("seq %d: got %v, want %v", seq, got, want)
		}
	}
	check(100, at(100), SeqNew)
	d.Mark("T1", telemetry.KindGPS, 100, at(100))
	check(100, at(100), SeqDuplicate)
	check(101, at(101), SeqNew)
	for s := 101; s <= 2000; s++ {
		if s == 1500 {
			continue // lost in a tunnel, back-filled below
		}
		d.Mark("T1", telemetry.KindGPS, uint64(s), at(s))
	}
	check(2000, at(2000), SeqDuplicate)
	check(1200, at(1200), SeqDuplicate) // inside the 1,024 window
	check(1500, at(1500), SeqLate)      // never seen: a back-fill
	d.Mark("T1", telemetry.KindGPS, 1500, at(1500))
	check(1500, at(1500), SeqDuplicate)
	check(900, at(900), SeqLate) // below the window, older ts: kept, not dropped
	// The device rebooted and counts from 0 again, with newer timestamps.
	check(0, at(3000), SeqNew)
	d.Mark("T1", telemetry.KindGPS, 0, at(3000))
	check(1, at(3001), SeqNew)
	d.Mark("T1", telemetry.KindGPS, 1, at(3001))
	check(1, at(3001), SeqDuplicate)
	check(2000, at(2000), SeqLate) // the old high is no longer the window
	// Another device, and another kind, have their own windows.
	if got := d.Check("T2", telemetry.KindGPS, 1, at(3001)); got != SeqNew {
		t.Fatalf("T2: %v", got)
	}
	if got := d.Check("T1", telemetry.KindSensors, 1, at(3001)); got != SeqNew {
		t.Fatalf("T1 sensors: %v", got)
	}
}

func TestDedupRestartWithinWindow(t *testing.T) {
	d := NewDedup()
	t0 := time.Unix(1_800_000_000, 0)
	for s := 0; s < 50; s++ {
		d.Mark("T1", telemetry.KindGPS, uint64(s), t0.Add(time.Duration(s)*time.Second))
	}
	// Counter restarted at 3 with a newer ts: not a redelivery of seq 3.
	if got := d.Check("T1", telemetry.KindGPS, 3, t0.Add(time.Hour)); got != SeqNew {
		t.Fatalf("got %v", got)
	}
	d.Mark("T1", telemetry.KindGPS, 3, t0.Add(time.Hour))
	if got := d.Check("T1", telemetry.KindGPS, 4, t0.Add(time.Hour+time.Second)); got != SeqNew {
		t.Fatalf("after restart: %v", got)
	}
}

func TestStreamShift(t *testing.T) {
	for _, n := range []uint64{1, 63, 64, 65, 127, 128, 500, 1022, 1023, 1024} {
		var s stream
		s.mark(1000, time.Unix(0, 0))
		s.mark(999, time.Unix(0, 0))
		s.mark(1000+n, time.Unix(1, 0))
		if s.has(1000) != (n < windowBits) || s.has(999) != (n+1 < windowBits) || s.has(998) || !s.has(1000+n) {
			t.Errorf("shift %d lost bits", n)
		}
	}
}

func BenchmarkIngestHandle(b *testing.B) {
	st := &memStore{}
	in, err := New(Options{Devices: devices{"T1": telemetry.ClassTruck}, Store: discardStore{}, Now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	_ = st
	msgs := make([][]byte, 1024)
	for i := range msgs {
		msgs[i] = gps(i, testNow)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in.Handle("T1", "trucks/T1/gps", msgs[i%len(msgs)])
	}
}

type discardStore struct{}

func (discardStore) Submit([]byte) Waiter { return memWaiter{} }
